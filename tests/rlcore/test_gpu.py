"""On a GPU: a CNN+gru policy collects and updates as on the CPU, the packed recurrent
pieces run through cuDNN, and bf16 autocast runs.

The whole module is skipped where CUDA is absent. Exact resume on CUDA (the CUDA
generator that samples actions) is tested in test_training.py::test_resume_continues_exactly.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator

import pytest
import torch

from rlcore import distributions
from rlcore.algos.common import masked_mean
from rlcore.device import autocast, resolve_device
from rlcore.models import ActorCritic, build_policy, policy_config
from rlcore.rollout import Rollout, RolloutCollector

pytestmark = pytest.mark.skipif(
    not torch.cuda.is_available(),
    reason="needs CUDA: compares the GPU rollout and update with the CPU's, checks cuDNN and bf16",
)

CUDA = torch.device("cuda")
CPU = torch.device("cpu")
SHAPE = (4, 84, 84)
NUM_ENVS, STEPS, CHUNK = 4, 24, 8
TOLERANCE = 1e-4


@pytest.fixture(autouse=True)
def full_float32() -> Iterator[None]:
    """TF32 (cuDNN's default for convolutions) keeps 10 mantissa bits: fine to train with,
    but comparing with the CPU within 1e-4 needs full float32."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def make_policy(greedy: bool) -> ActorCritic:
    """A CNN+gru policy; `greedy` makes it always pick action 1, so that the CPU's and
    the GPU's samplers (different generators) play the same actions, hence see the same
    frames; its values, log-probs and states still come from the whole network."""
    torch.manual_seed(0)
    policy = build_policy(policy_config("gru", SHAPE, 6, 32, 1, 1))
    if greedy:
        with torch.no_grad():
            policy.policy_head.weight.zero_()
            policy.policy_head.bias.copy_(torch.tensor([0.0, 40.0, 0.0, 0.0, 0.0, 0.0]))
    return policy


def collect(pixel_env: Callable, policy: ActorCritic, device: torch.device, **options) -> Rollout:
    envs = pixel_env(NUM_ENVS, lives=2, episodic_life=True, max_episode_steps=7)
    collector = RolloutCollector(envs, policy.to(device), device, seed=5, **options)
    collector.collect(5, CHUNK)  # start mid-episode: chunks begin from carried states
    return collector.collect(STEPS, CHUNK)


def ppo_loss(policy: ActorCritic, rollout: Rollout) -> torch.Tensor:
    """The loss of one PPO minibatch holding every chunk (as rlcore/algos/ppo.py)."""
    advantages, returns = rollout.gae(0.99, 0.95)
    batch = rollout.sequences(advantages, returns, CHUNK)
    logits, values, _ = policy(batch.obs, batch.initial_states, batch.episode_starts)
    log_ratio = distributions.log_prob(logits, batch.actions) - batch.logprobs
    ratio = log_ratio.exp()
    adv = batch.advantages
    policy_loss = masked_mean(torch.max(-adv * ratio, -adv * ratio.clamp(0.8, 1.2)), batch.mask)
    value_loss = 0.5 * masked_mean((values - batch.returns) ** 2, batch.mask)
    entropy = masked_mean(distributions.entropy(logits), batch.mask)
    return policy_loss + 0.5 * value_loss - 0.01 * entropy


def update(policy: ActorCritic, rollout: Rollout) -> tuple[float, dict[str, torch.Tensor]]:
    """One Adam step on `rollout`: the loss, and the gradients and new weights on the CPU."""
    optimizer = torch.optim.Adam(policy.parameters(), lr=1e-3, eps=1e-5)
    loss = ppo_loss(policy, rollout)
    loss.backward()
    grads = {f"grad.{n}": p.grad.detach().cpu().clone() for n, p in policy.named_parameters()}
    optimizer.step()
    return float(loss.detach()), grads | {n: p.detach().cpu().clone() for n, p in policy.named_parameters()}


def test_auto_picks_cuda() -> None:
    assert resolve_device("auto").type == "cuda"
    assert resolve_device("cuda").type == "cuda"


def test_cuda_rollout_and_update_equal_the_cpus(pixel_env) -> None:
    policy = make_policy(greedy=True)
    cpu = collect(pixel_env, copy.deepcopy(policy), CPU)
    gpu = collect(pixel_env, copy.deepcopy(policy), CUDA)

    assert gpu.obs.device.type == "cuda" and gpu.obs.dtype == torch.uint8
    assert gpu.episode_starts[1:].any(), "episodes start inside the chunks: the packed path runs"
    for name in ["obs", "actions", "rewards", "dones", "episode_starts"]:  # the same game, step for step
        torch.testing.assert_close(getattr(gpu, name).cpu(), getattr(cpu, name), atol=0, rtol=0, msg=name)
    for name in ["values", "logprobs", "states", "truncation_values", "last_value"]:
        torch.testing.assert_close(
            getattr(gpu, name).cpu(), getattr(cpu, name), atol=TOLERANCE, rtol=0, msg=name
        )

    cpu_policy, gpu_policy = copy.deepcopy(policy), copy.deepcopy(policy).to(CUDA)
    cpu_loss, cpu_after = update(cpu_policy, cpu)
    gpu_loss, gpu_after = update(gpu_policy, gpu)
    assert gpu_loss == pytest.approx(cpu_loss, abs=TOLERANCE)
    for name, expected in cpu_after.items():
        torch.testing.assert_close(gpu_after[name], expected, atol=TOLERANCE, rtol=TOLERANCE, msg=name)
    assert cpu_after["grad.encoder.net.0.weight"].abs().sum() > 0, "gradients reach the convolutions"


def test_a_cpu_rollout_replays_and_trains_the_same_on_cuda(pixel_env) -> None:
    """A sampling policy (not greedy): the CPU's rollout, replayed by the GPU's update."""
    policy = make_policy(greedy=False)
    rollout = collect(pixel_env, copy.deepcopy(policy), CPU)
    on_gpu = Rollout(
        **{
            name: value.to(CUDA) if isinstance(value, torch.Tensor) else value
            for name, value in vars(rollout).items()
        }
    )
    cpu_loss, cpu_after = update(copy.deepcopy(policy), rollout)
    gpu_loss, gpu_after = update(copy.deepcopy(policy).to(CUDA), on_gpu)
    assert gpu_loss == pytest.approx(cpu_loss, abs=TOLERANCE)
    for name, expected in cpu_after.items():
        torch.testing.assert_close(gpu_after[name], expected, atol=TOLERANCE, rtol=TOLERANCE, msg=name)


def test_the_packed_recurrent_update_runs_through_cudnn(pixel_env) -> None:
    assert torch.backends.cudnn.is_available() and torch.backends.cudnn.enabled
    policy = make_policy(greedy=False).to(CUDA)
    rollout = collect(pixel_env, policy, CUDA)
    assert rollout.episode_starts[1:].any()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profile:
        ppo_loss(policy, rollout).backward()
        torch.cuda.synchronize()
    ops = {event.key for event in profile.key_averages()}
    assert "aten::_cudnn_rnn" in ops and "aten::_cudnn_rnn_backward" in ops, sorted(ops)
    assert "aten::cudnn_convolution" in ops, sorted(ops)


def test_bf16_autocast_runs_the_rollout_and_the_update(pixel_env) -> None:
    context = autocast(CUDA, enabled=True)
    assert isinstance(context, torch.autocast) and context.fast_dtype == torch.bfloat16

    policy = make_policy(greedy=True)
    conv_dtypes: list[torch.dtype] = []
    bf16_policy = copy.deepcopy(policy)
    bf16_policy.encoder.net[0].register_forward_hook(lambda module, args, out: conv_dtypes.append(out.dtype))
    mixed = collect(pixel_env, bf16_policy, CUDA, bf16=True)
    full = collect(pixel_env, copy.deepcopy(policy), CUDA)
    assert set(conv_dtypes) == {torch.bfloat16}, "the convolutions ran in bf16"
    assert mixed.values.dtype == mixed.states.dtype == torch.float32
    torch.testing.assert_close(mixed.actions, full.actions, atol=0, rtol=0)
    difference = (mixed.values - full.values).abs().max()
    assert 0 < difference < 0.1, difference  # bf16 rounding, nothing worse

    conv_dtypes.clear()
    with autocast(CUDA, enabled=True):
        loss = ppo_loss(bf16_policy, mixed)
    assert loss.dtype == torch.float32 and set(conv_dtypes) == {torch.bfloat16}
    loss.backward()
    grads = [p.grad for p in bf16_policy.parameters()]
    assert all(g is not None and g.dtype == torch.float32 and torch.isfinite(g).all() for g in grads)
    assert bf16_policy.encoder.net[0].weight.grad.abs().sum() > 0
