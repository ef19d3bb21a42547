"""The action distributions agree with torch.distributions, and action specs follow the spaces."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gymnasium import spaces
from torch.distributions import AffineTransform, Categorical, Normal, TanhTransform, TransformedDistribution

from rlcore.distributions import (
    DiagGaussian,
    MultiCategorical,
    action_dist,
    action_spec_of,
    discrete_spec,
    gaussian_spec,
    multi_discrete_spec,
)
from rlcore.models import build_policy, policy_config

NVEC = [3, 5, 2]
LOW, HIGH = [-2.0, 0.0, -1.0], [2.0, 1.0, 3.0]


def test_multi_discrete_log_prob_and_entropy_are_sums_of_per_dimension_categoricals() -> None:
    torch.manual_seed(0)
    dist = MultiCategorical(NVEC)
    params = torch.randn(7, 4, sum(NVEC)) * 2
    actions = dist.sample(params)
    assert actions.shape == (7, 4, len(NVEC)) and actions.dtype == torch.long
    per_dim = [Categorical(logits=p) for p in params.split(NVEC, dim=-1)]
    expected_lp = sum(c.log_prob(actions[..., i]) for i, c in enumerate(per_dim))
    expected_h = sum(c.entropy() for c in per_dim)
    torch.testing.assert_close(dist.log_prob(params, actions), expected_lp, atol=1e-6, rtol=0)
    torch.testing.assert_close(dist.entropy(params), expected_h, atol=1e-6, rtol=0)
    for i, n in enumerate(NVEC):
        assert actions[..., i].min() >= 0 and actions[..., i].max() < n
    greedy = dist.deterministic(params)
    assert torch.equal(greedy, torch.stack([p.argmax(-1) for p in params.split(NVEC, dim=-1)], -1))


def test_multi_discrete_samples_follow_each_dimensions_probabilities() -> None:
    dist = MultiCategorical([2, 3])
    params = torch.tensor([[0.0, 1.0, 2.0, 0.0, -1.0]]).expand(40_000, 5)
    actions = dist.sample(params, torch.Generator().manual_seed(1))
    for i, p in enumerate(params[0].split([2, 3])):
        freq = torch.bincount(actions[:, i], minlength=p.numel()).float() / len(actions)
        torch.testing.assert_close(freq, torch.softmax(p, -1), atol=0.01, rtol=0)


def test_gaussian_clip_log_prob_and_entropy_are_the_normals() -> None:
    torch.manual_seed(0)
    dist = DiagGaussian(LOW, HIGH, "clip")
    mean, log_std = torch.randn(6, 5, 3), torch.randn(6, 5, 3) * 0.5
    params = torch.cat([mean, log_std], -1)
    actions = dist.sample(params)
    assert actions.shape == (6, 5, 3) and actions.dtype == torch.float32
    normal = Normal(mean, log_std.exp())
    torch.testing.assert_close(
        dist.log_prob(params, actions), normal.log_prob(actions).sum(-1), atol=1e-5, rtol=0
    )
    torch.testing.assert_close(dist.entropy(params), normal.entropy().sum(-1), atol=1e-5, rtol=0)
    # The raw sample is stored; only what goes to the env is clipped.
    sent = dist.to_env(actions * 10)
    assert (sent >= torch.tensor(LOW)).all() and (sent <= torch.tensor(HIGH)).all()
    assert ((actions * 10).abs() > 3).any()
    assert torch.equal(dist.deterministic(params), mean)


def test_gaussian_tanh_log_prob_is_the_transformed_distributions() -> None:
    torch.manual_seed(1)
    dist = DiagGaussian(LOW, HIGH, "tanh")
    mean, log_std = torch.randn(200, 3), torch.randn(200, 3) * 0.3
    params = torch.cat([mean, log_std], -1)
    raw = dist.sample(params)
    low, high = torch.tensor(LOW), torch.tensor(HIGH)
    squashed = TransformedDistribution(
        Normal(mean, log_std.exp()),
        [TanhTransform(), AffineTransform(loc=(low + high) / 2, scale=(high - low) / 2)],
    )
    sent = dist.to_env(raw)
    assert (sent >= low).all() and (sent <= high).all()
    # Comparable where tanh is not saturated: torch inverts the squashed action (atanh).
    ok = raw.abs().max(-1).values < 3
    assert ok.sum() > 150
    expected = squashed.log_prob(sent).sum(-1)
    torch.testing.assert_close(dist.log_prob(params, raw)[ok], expected[ok], atol=1e-4, rtol=1e-5)
    # Saturated samples stay finite where atanh of the squashed action would not.
    far = torch.full((1, 3), 30.0)
    assert torch.isfinite(dist.log_prob(params[:1], far)).all()
    torch.testing.assert_close(
        dist.to_env(dist.deterministic(params)), low + (mean.tanh() + 1) / 2 * (high - low)
    )


def test_action_specs_follow_the_spaces() -> None:
    assert action_spec_of(spaces.Discrete(4)) == discrete_spec(4) == {"kind": "discrete", "n": 4}
    assert action_spec_of(spaces.MultiDiscrete(NVEC)) == multi_discrete_spec(NVEC)
    box = spaces.Box(np.array(LOW, np.float32), np.array(HIGH, np.float32))
    assert action_spec_of(box) == gaussian_spec(LOW, HIGH, "clip")
    assert action_spec_of(box, squash="tanh")["squash"] == "tanh"
    with pytest.raises(ValueError, match="bounded"):
        action_spec_of(spaces.Box(-np.inf, np.inf, (2,)))
    with pytest.raises(ValueError, match="unknown action kind"):
        action_dist({"kind": "beta"})
    with pytest.raises(ValueError, match="squash"):
        action_dist(gaussian_spec(LOW, HIGH, "sigmoid"))


@pytest.mark.parametrize(
    ("action", "head", "extra"),
    [(discrete_spec(4), 4, 0), (multi_discrete_spec(NVEC), 10, 0), (gaussian_spec(LOW, HIGH), 3, 3)],
)
def test_policy_heads_by_kind_and_old_configs_are_discrete(action, head, extra) -> None:
    config = policy_config("gru", (5,), action, 8, 1, 1)
    assert config["action"] == action and config["num_actions"] == head
    policy = build_policy(config)
    assert policy.policy_head.out_features == head
    params, _, _ = policy(torch.zeros(2, 3, 5), policy.initial_state(3), torch.zeros(2, 3, dtype=torch.bool))
    assert params.shape == (2, 3, head + extra)
    if extra:  # log-std starts at 0 (std 1), state-independent
        assert torch.equal(params[..., head:], torch.zeros(2, 3, 3))
    old = {k: v for k, v in policy_config("gru", (5,), 4, 8, 1, 1).items() if k != "action"}
    assert build_policy(old).action_spec == discrete_spec(4)
