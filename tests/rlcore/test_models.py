"""Model variants: one interface; memory where it should be and nowhere else."""

from __future__ import annotations

import contextlib
import math

import pytest
import torch
from torch import nn

from rlcore.device import autocast
from rlcore.models import ActorCritic, build_policy, policy_config, spec_policy_config
from rlcore.models.encoders import NatureCNN, nature_conv_output

VARIANTS = ["mlp", "gru_cell", "gru", "lstm", "window"]


def make_policy(model: str, layers: int = 1, window: int = 4, encoder: str = "dense"):
    torch.manual_seed(0)
    return build_policy(policy_config(model, (4,), 2, 16, layers, window, encoder))


@pytest.mark.parametrize("encoder", ["dense", "none"])
@pytest.mark.parametrize("model", VARIANTS)
@pytest.mark.parametrize("layers", [1, 2])
def test_chunk_replay_equals_step_by_step(model: str, layers: int, encoder: str) -> None:
    """Running a chunk with episode starts inside equals acting one step at a time."""
    policy = make_policy(model, layers, encoder=encoder)
    steps, batch = 24, 5
    obs = torch.randn(steps, batch, 4)
    starts = torch.rand(steps, batch) < 0.2
    state0 = torch.randn(batch, *policy.state_shape)

    state, stepped = state0, []
    for t in range(steps):
        logits, _, state = policy(obs[t : t + 1], state, starts[t : t + 1])
        stepped.append(logits)
    chunk_logits, _, chunk_state = policy(obs, state0, starts)

    torch.testing.assert_close(chunk_logits, torch.cat(stepped), atol=1e-6, rtol=0)
    torch.testing.assert_close(chunk_state, state, atol=1e-6, rtol=0)


@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("reset_steps", [(), (9,), (9, 20)])
def test_lstm_training_between_resets_equals_the_step_loop(layers: int, reset_steps: tuple[int, ...]) -> None:
    """An LSTM trains over a chunk with few episode starts through nn.LSTM (oneDNN), called
    between those starts: outputs, final state and every gradient are the loop's."""
    policy = make_policy("lstm", layers)
    core = policy.core
    steps, batch = 32, 4
    features = torch.randn(steps, batch, 16)
    starts = torch.zeros(steps, batch, dtype=torch.bool)
    starts[0, 1] = True
    for t in reset_steps:
        starts[t, t % batch] = True
    state = torch.randn(batch, *policy.state_shape)
    probe = torch.randn(steps, batch, 16)

    def run(fn):
        core.zero_grad()
        x = features.clone().requires_grad_()
        out, last = fn(x, state, starts)
        ((out * probe).sum() + last.sum()).backward()
        return out, last, x.grad, [p.grad.clone() for p in core.parameters()]

    assert len(reset_steps) <= steps // 8  # the stretches' path, as forward chooses it
    got = run(core)
    expected = run(core._run_sequence)
    for g, e in zip(got, expected, strict=True):
        torch.testing.assert_close(g, e, atol=1e-5, rtol=1e-5)


def gradient_to_earlier_obs(model: str, k: int, start_at: int | None = None) -> float:
    policy = make_policy(model, window=k + 2)
    obs = torch.randn(k + 1, 1, 4, requires_grad=True)
    starts = torch.zeros(k + 1, 1, dtype=torch.bool)
    starts[0] = True
    if start_at is not None:
        starts[start_at] = True
    logits, _, _ = policy(obs, policy.initial_state(1), starts)
    logits[-1].sum().backward()
    return float(obs.grad[0].abs().sum())


@pytest.mark.parametrize("model", ["gru", "lstm"])
def test_gradient_flows_through_time_in_recurrent_models(model: str) -> None:
    assert gradient_to_earlier_obs(model, k=6) > 1e-6


@pytest.mark.parametrize("model", ["mlp", "gru_cell"])
def test_no_gradient_through_time_in_stateless_models(model: str) -> None:
    assert gradient_to_earlier_obs(model, k=6) == 0.0


@pytest.mark.parametrize("model", ["gru", "lstm", "window"])
def test_episode_start_cuts_memory_and_gradient(model: str) -> None:
    assert gradient_to_earlier_obs(model, k=6, start_at=3) == 0.0


def test_window_sees_exactly_k_observations() -> None:
    k = 3
    policy = make_policy("window", window=k)
    obs = torch.randn(8, 1, 4, requires_grad=True)
    starts = torch.zeros(8, 1, dtype=torch.bool)
    starts[0] = True
    logits, _, _ = policy(obs, policy.initial_state(1), starts)
    logits[-1].sum().backward()
    touched = obs.grad.abs().sum(dim=(1, 2)) > 0
    assert touched.tolist() == [False] * (8 - k) + [True] * k


@pytest.mark.parametrize("model", ["mlp", "gru", "lstm"])
def test_without_encoder_the_core_reads_the_observation(model: str) -> None:
    policy = make_policy(model, encoder="none")
    first_layer = next(p for name, p in policy.core.named_parameters() if "weight" in name)
    assert first_layer.shape[-1] == 4  # the observation size, not the hidden size
    assert not any(True for _ in policy.encoder.parameters())


def test_state_shapes_are_batch_first() -> None:
    assert make_policy("gru", layers=2).initial_state(7).shape == (7, 2, 16)
    assert make_policy("lstm", layers=2).initial_state(7).shape == (7, 4, 16)
    assert make_policy("window", window=5).initial_state(7).shape == (7, 4, 16)
    assert make_policy("mlp").initial_state(7).shape == (7, 0)


# --- pixel observations: the Nature-CNN encoder -------------------------------------


def cnn_policy(model: str, obs_shape: tuple[int, ...] = (1, 36, 36), window: int = 4) -> ActorCritic:
    torch.manual_seed(0)
    return build_policy(policy_config(model, obs_shape, 6, 32, 1, window))


def frames(*leading: int, shape: tuple[int, ...] = (1, 36, 36), seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (*leading, *shape), dtype=torch.uint8, generator=generator)


@pytest.mark.parametrize(("shape", "conv_out"), [((4, 84, 84), (64, 7, 7)), ((1, 36, 36), (64, 1, 1))])
def test_cnn_makes_512_features_of_any_leading_dims(shape: tuple[int, ...], conv_out: tuple) -> None:
    encoder = NatureCNN(shape)
    assert nature_conv_output(*shape[1:]) == conv_out
    assert encoder.net[-2].in_features == math.prod(conv_out)
    assert encoder(frames(5, shape=shape)).shape == (5, 512)
    assert encoder(frames(3, 2, shape=shape)).shape == (3, 2, 512)
    # (T, B) flattened for the convolutions and restored: each frame's features are its own.
    both = frames(3, 2, shape=shape)
    torch.testing.assert_close(encoder(both)[1, 0], encoder(both[1, 0][None])[0], atol=1e-5, rtol=0)


def test_cnn_needs_frames_of_at_least_36_pixels() -> None:
    NatureCNN((1, 36, 50))
    with pytest.raises(ValueError, match="at least 36x36"):
        NatureCNN((1, 35, 84))


def test_cnn_scales_uint8_frames_on_the_device() -> None:
    encoder = NatureCNN((4, 84, 84))
    raw = frames(2, 3, shape=(4, 84, 84))
    scaled = raw.float() / 255.0
    expected = encoder.net(scaled.reshape(6, 4, 84, 84)).reshape(2, 3, 512)
    torch.testing.assert_close(encoder(raw), expected, atol=0, rtol=0)
    # The frames' dtype does not matter, only their 0..255 values.
    torch.testing.assert_close(encoder(raw.float()), expected, atol=0, rtol=0)
    assert expected.abs().sum() > 0
    # Unscaled frames would give other features: the scaling is really done.
    assert (encoder.net(raw.float().reshape(6, 4, 84, 84)).reshape(2, 3, 512) - expected).abs().max() > 1e-2


def test_cnn_layers_are_orthogonal_with_gain_sqrt2_and_zero_bias() -> None:
    encoder = NatureCNN((4, 84, 84))
    layers = [m for m in encoder.net if isinstance(m, nn.Conv2d | nn.Linear)]
    assert [type(m) for m in layers] == [nn.Conv2d] * 3 + [nn.Linear]
    assert [(m.out_channels, m.kernel_size, m.stride) for m in layers[:3]] == [
        (32, (8, 8), (4, 4)),
        (64, (4, 4), (2, 2)),
        (64, (3, 3), (1, 1)),
    ]
    assert layers[-1].out_features == 512
    for layer in layers:
        weight = layer.weight.detach().reshape(layer.weight.shape[0], -1)  # rows <= columns here
        torch.testing.assert_close(weight @ weight.T, 2.0 * torch.eye(weight.shape[0]), atol=1e-4, rtol=0)
        assert torch.count_nonzero(layer.bias) == 0


def test_the_encoder_is_chosen_by_the_observation_shape(make_spec) -> None:
    assert policy_config("gru", (4, 84, 84), 6, 32, 1, 1)["encoder"] == "cnn"
    assert policy_config("gru", (4,), 2, 32, 1, 1)["encoder"] == "dense"
    assert isinstance(build_policy(policy_config("gru", (4, 84, 84), 6, 32, 1, 1)).encoder, NatureCNN)
    # The spec's dense/none choice is for vectors; pixel envs always get the cnn.
    for encoder in ("dense", "none"):
        config = spec_policy_config(make_spec(encoder=encoder), (1, 36, 36), 6)
        assert config["encoder"] == "cnn"
        assert spec_policy_config(make_spec(encoder=encoder), (4,), 2)["encoder"] == encoder
    with pytest.raises(ValueError, match="need cnn"):
        build_policy(policy_config("gru", (4, 84, 84), 6, 32, 1, 1, "dense"))
    with pytest.raises(ValueError, match=r"reads \(C, H, W\) frames"):
        build_policy(policy_config("gru", (4,), 2, 32, 1, 1, "cnn"))


@pytest.mark.parametrize("model", VARIANTS)
def test_cnn_policies_replay_chunks_as_they_acted(model: str) -> None:
    """The memory cores read the 512 features unchanged: chunk replay equals acting."""
    policy = cnn_policy(model)
    steps, batch = 12, 3
    obs = frames(steps, batch)
    starts = torch.rand(steps, batch, generator=torch.Generator().manual_seed(1)) < 0.2
    state0 = torch.randn(batch, *policy.state_shape)
    assert policy.core.state_shape == {"gru": (1, 32), "lstm": (2, 32), "window": (3, 512)}.get(model, (0,))

    state, stepped = state0, []
    for t in range(steps):
        logits, _, state = policy(obs[t : t + 1], state, starts[t : t + 1])
        stepped.append(logits)
    chunk_logits, chunk_values, chunk_state = policy(obs, state0, starts)
    assert chunk_logits.shape == (steps, batch, 6) and chunk_values.shape == (steps, batch)
    torch.testing.assert_close(chunk_logits, torch.cat(stepped), atol=1e-5, rtol=0)
    torch.testing.assert_close(chunk_state, state, atol=1e-5, rtol=0)


def test_under_autocast_only_the_encoder_runs_in_bf16() -> None:
    """The core and heads run in float32 whatever autocast the caller has on (the CPU's
    bf16 autocast stands in for CUDA's here: the same code path)."""
    policy = cnn_policy("gru")
    seen: list[torch.dtype] = []
    policy.encoder.net[0].register_forward_hook(lambda module, args, out: seen.append(out.dtype))
    obs, starts = frames(4, 2), torch.zeros(4, 2, dtype=torch.bool)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits, value, state = policy(obs, policy.initial_state(2), starts)
    assert seen == [torch.bfloat16]
    assert logits.dtype == value.dtype == state.dtype == torch.float32
    reference, _, _ = policy(obs, policy.initial_state(2), starts)
    torch.testing.assert_close(logits, reference, atol=0.05, rtol=0)


def test_the_autocast_helper_does_nothing_on_the_cpu_or_when_disabled() -> None:
    """(On CUDA it is bf16 autocast: tests/rlcore/test_gpu.py.)"""
    assert isinstance(autocast("cpu", enabled=True), contextlib.nullcontext)
    assert isinstance(autocast(torch.device("cuda"), enabled=False), contextlib.nullcontext)
