"""FlatParameters (with rlcore's Adam): the same gradient steps as PyTorch's per-tensor clip and Adam."""

from __future__ import annotations

import torch

from rlcore.adam import Adam
from rlcore.flat import FlatParameters
from rlcore.models import build_policy
from rlcore.models.policy import policy_config


def _policy(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_policy(policy_config("gru", (4,), 2, hidden_size=16, num_layers=1, window_length=1))


def _loss(policy: torch.nn.Module, obs: torch.Tensor, starts: torch.Tensor) -> torch.Tensor:
    logits, values, _ = policy(obs, policy.initial_state(obs.shape[1]), starts)
    return logits.logsumexp(-1).square().mean() + values.square().mean()


def test_flat_steps_match_per_tensor_clip_and_adam() -> None:
    flat_policy, reference = _policy(0), _policy(0)
    flat = FlatParameters(flat_policy)
    flat_adam = Adam(flat.flat, lr=0.01, eps=1e-5)
    adam = torch.optim.Adam(reference.parameters(), lr=0.01, eps=1e-5)
    obs, starts = torch.randn(8, 3, 4), torch.zeros(8, 3, dtype=torch.bool)
    for _ in range(5):
        flat.zero_grad()
        _loss(flat_policy, obs, starts).backward()
        norm = flat.clip_grad_norm_(0.1)
        flat_adam.step()
        adam.zero_grad()
        _loss(reference, obs, starts).backward()
        reference_norm = torch.nn.utils.clip_grad_norm_(reference.parameters(), 0.1)
        adam.step()
        torch.testing.assert_close(norm, reference_norm)
    assert norm > 0.1  # the clip acted, so the comparison covers it
    for (name, p), q in zip(flat_policy.named_parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(p, q, msg=name)
        # Autograd accumulated into the flat buffer, not into new tensors.
        assert p.grad is not None and p.grad.untyped_storage().data_ptr() == flat.flat.grad.data_ptr()


def test_per_tensor_optimizer_state_loads_as_flat() -> None:
    """A checkpoint from before FlatParameters resumes with the same Adam moments."""
    policy, reference = _policy(1), _policy(1)
    adam = torch.optim.Adam(reference.parameters(), lr=0.01)
    _loss(reference, torch.randn(4, 2, 4), torch.zeros(4, 2, dtype=torch.bool)).backward()
    adam.step()
    flat = FlatParameters(policy)
    flat_adam = Adam(flat.flat, lr=0.01)
    flat_adam.load_state_dict(flat.flatten_optimizer_state(adam.state_dict()))
    state = flat_adam.state_dict()["state"][0]
    per_tensor = adam.state_dict()["state"].values()
    torch.testing.assert_close(state["exp_avg"], torch.cat([s["exp_avg"].flatten() for s in per_tensor]))
    torch.testing.assert_close(state["step"], torch.tensor(1.0))
