"""Envs say what they hide (rlcore.envs.hidden): the true values, and when the observation shows them."""

from __future__ import annotations

import numpy as np
import pytest

from rlcore.envs import EnvOptions, HiddenVariable, hidden_values, hidden_variables, make_vec_env

PREVIOUS = EnvOptions(previous_action=True)


def _names(env_id: str, options: EnvOptions | None = None) -> list[str]:
    envs = make_vec_env(env_id, 2, 0, options)
    names = [v.name for v in hidden_variables(envs)]
    assert sorted(hidden_values(envs)) == sorted(names)
    envs.close()
    return names


@pytest.mark.parametrize(
    ("env_id", "options", "names"),
    [
        ("CartPole-v1", None, []),
        ("CartPoleMasked-v1", None, ["cart_velocity", "pole_angular_velocity"]),
        ("CartPoleFlicker-v1", None, ["cart_velocity", "pole_angular_velocity"]),
        ("PendulumMasked-v1", None, ["angular_velocity"]),
        ("CueRecall-v0", None, ["cue"]),
        ("CueRecallPixels-v0", EnvOptions(flicker=0.5), ["cue"]),
        ("popgym/PositionOnlyCartPoleEasy", None, ["cart_velocity", "pole_angular_velocity"]),
        ("popgym/VelocityOnlyCartPoleMedium", PREVIOUS, ["cart_position", "pole_angle"]),
        ("popgym/NoisyPositionOnlyPendulumEasy", None, ["angular_velocity"]),
        ("popgym/RepeatFirstEasy", None, ["first_suit"]),
        ("popgym/AutoencodeEasy", None, []),
    ],
)
def test_envs_name_what_they_hide(env_id: str, options: EnvOptions | None, names: list[str]) -> None:
    assert _names(env_id, options) == names


def test_cue_is_shown_at_the_first_step_only_and_follows_the_autoreset() -> None:
    envs = make_vec_env("CueRecall-v0", 3, 0)
    obs, _ = envs.reset(seed=1)
    for t in range(25):  # two and a half episodes
        cue = hidden_values(envs)["cue"]
        first = t % 10 == 0
        np.testing.assert_array_equal(cue.visible, np.full(3, first))
        if first:
            np.testing.assert_array_equal(cue.values, obs[:, :2].argmax(axis=1))
        obs, *_ = envs.step(np.zeros(3, dtype=np.int64))
    envs.close()


def test_flicker_shows_the_cue_only_when_the_first_frame_is_not_blanked() -> None:
    envs = make_vec_env("CueRecallPixels-v0", 64, 0, EnvOptions(flicker=0.5))
    obs, _ = envs.reset(seed=3)
    visible = hidden_values(envs)["cue"].visible
    np.testing.assert_array_equal(visible, obs.reshape(64, -1).max(axis=1) > 0)
    assert 0 < visible.sum() < 64
    envs.close()


def test_popgym_hidden_values_are_the_popgym_state() -> None:
    envs = make_vec_env("popgym/PositionOnlyCartPoleEasy", 2, 0)
    obs, _ = envs.reset(seed=0)
    for _ in range(5):
        velocity = hidden_values(envs)["cart_velocity"].values
        position = obs[:, 0].astype(np.float64)
        obs, *_ = envs.step(np.ones(2, dtype=np.int64))
        # The cart moves by 0.02 x its velocity each step (gymnasium's Euler integrator).
        np.testing.assert_allclose(obs[:, 0] - position, 0.02 * velocity, atol=1e-6)
    envs.close()


def test_repeat_first_shows_the_first_suit_at_the_start() -> None:
    envs = make_vec_env("popgym/RepeatFirstEasy", 2, 0)
    obs, _ = envs.reset(seed=0)
    first = hidden_values(envs)["first_suit"]
    assert first.visible.all()
    np.testing.assert_array_equal(first.values, obs.argmax(axis=1))  # the card dealt is the first
    envs.step(np.zeros(2, dtype=np.int64))
    after = hidden_values(envs)["first_suit"]
    assert not after.visible.any()
    np.testing.assert_array_equal(after.values, first.values)
    envs.close()


def test_a_variable_is_continuous_or_has_classes() -> None:
    with pytest.raises(ValueError, match="kind"):
        HiddenVariable("x", "ordinal")
    with pytest.raises(ValueError, match="classes"):
        HiddenVariable("x", "discrete")
    assert HiddenVariable("x", "discrete", 3).to_json()["classes"] == 3
