"""TrainSpec: defaults per algorithm, bounds, and errors that name the field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from rlcore.spec import ALGORITHM_DEFAULTS, ENV_OPTIONS, NOT_APPLYING, Algorithm, TrainSpec, applying_fields


def error_fields(data: dict) -> set[str]:
    with pytest.raises(ValidationError) as caught:
        TrainSpec.model_validate(data)
    return {".".join(map(str, e["loc"])) or "spec" for e in caught.value.errors()}


@pytest.mark.parametrize("algo", list(Algorithm))
def test_algorithm_defaults_fill_unset_fields(algo: Algorithm) -> None:
    spec = TrainSpec(algo=algo)
    for field, value in ALGORITHM_DEFAULTS[algo].items():
        assert getattr(spec, field) == (None if field in NOT_APPLYING[algo] else value)


def test_explicit_values_win_over_defaults() -> None:
    spec = TrainSpec(algo="ppo", learning_rate=0.123, num_envs=3, minibatches=1)
    assert (spec.learning_rate, spec.num_envs) == (0.123, 3)


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"env_id": "NoSuchEnv-v0"}, "env_id"),
        ({"env_id": "os:system"}, "env_id"),
        ({"env_id": "gymnasium.envs.classic_control:CartPoleEnv"}, "env_id"),
        ({"learning_rate": -0.001}, "learning_rate"),
        ({"learning_rate": "fast"}, "learning_rate"),
        ({"hidden_size": 10**6}, "hidden_size"),
        ({"num_envs": 0}, "num_envs"),
        ({"total_steps": 10**12}, "total_steps"),
        ({"gamma": 1.5}, "gamma"),
        ({"model": "transformer"}, "model"),
        ({"algo": "dqn"}, "algo"),
        ({"seed": "abc"}, "seed"),
        ({"device": "tpu"}, "device"),
        ({"bogus": 1}, "bogus"),
    ],
)
def test_bad_values_name_the_field(data: dict, field: str) -> None:
    assert field in error_fields(data)


def test_default_minibatches_shrink_to_fit_a_small_spec() -> None:
    assert TrainSpec(algo="ppo", num_envs=2, rollout_length=16).minibatches == 2
    assert TrainSpec(algo="ppo", num_envs=64).minibatches == ALGORITHM_DEFAULTS[Algorithm.ppo]["minibatches"]


def test_cross_field_errors_are_explained() -> None:
    with pytest.raises(ValidationError, match="bptt_length must not exceed rollout_length"):
        TrainSpec(rollout_length=16, bptt_length=32)
    with pytest.raises(ValidationError, match="exceeds 1,000,000"):
        TrainSpec(num_envs=512, rollout_length=8192)
    with pytest.raises(ValidationError, match="minibatches"):
        TrainSpec(num_envs=2, rollout_length=8, minibatches=4)


def test_unknown_env_error_lists_the_allowed_ids() -> None:
    with pytest.raises(ValidationError, match="CartPoleMasked-v1"):
        TrainSpec(env_id="Pong")


def test_loads_yaml_and_json(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("algo: a2c\nmodel: lstm\nenv_id: CueRecall-v0\n")
    (tmp_path / "b.json").write_text('{"algo": "reinforce", "model": "mlp"}')
    assert TrainSpec.from_file(tmp_path / "a.yaml").model.value == "lstm"
    assert TrainSpec.from_file(tmp_path / "b.json").algo is Algorithm.reinforce


def test_example_specs_are_valid() -> None:
    examples = sorted(Path(__file__).parents[2].joinpath("examples").glob("*.yaml"))
    assert examples, "examples/ holds the specs the README points to"
    for path in examples:
        if not path.name.startswith("study-"):  # a study (spec, axes, seeds): tests/app/test_studies.py
            TrainSpec.from_file(path)


@pytest.mark.parametrize(
    ("algo", "field", "value", "message"),
    [
        ("a2c", "epochs", 4, "epochs: does not apply to a2c (it makes one pass per rollout)"),
        ("a2c", "clip_range", 0.2, "clip_range: does not apply to a2c"),
        ("a2c", "target_kl", 0.02, "target_kl: does not apply to a2c"),
        ("reinforce", "vf_coef", 0.5, "vf_coef: does not apply to reinforce (it trains no critic)"),
        ("reinforce", "gae_lambda", 0.9, "gae_lambda: does not apply to reinforce"),
        ("reinforce", "clip_range", 0.1, "clip_range: does not apply to reinforce"),
        ("reinforce", "epochs", 1, "epochs: does not apply to reinforce"),
        ("reinforce", "target_kl", 0.01, "target_kl: does not apply to reinforce"),
    ],
)
def test_a_field_the_algorithm_ignores_is_refused(algo: str, field: str, value: object, message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        TrainSpec.model_validate({"algo": algo, field: value})
    (error,) = caught.value.errors()
    assert f"{error['loc'][0]}: {error['msg']}".startswith(message)


@pytest.mark.parametrize("algo", list(Algorithm))
def test_fields_that_do_not_apply_are_none_and_left_out_of_the_dump(algo: Algorithm) -> None:
    spec = TrainSpec(algo=algo)
    dump = spec.model_dump(mode="json")
    # CartPole takes no env options: they are None and left out as well.
    assert list(dump) == [name for name in applying_fields(algo) if name not in ENV_OPTIONS]
    assert all(getattr(spec, name) is None for name in ENV_OPTIONS)
    assert all(getattr(spec, name) is None for name in NOT_APPLYING[algo])
    assert TrainSpec.model_validate(dump) == spec
    assert TrainSpec.model_validate_json(spec.model_dump_json()) == spec


def test_ppo_uses_every_field_and_target_kl_is_off_by_default() -> None:
    spec = TrainSpec(algo="ppo")
    assert applying_fields(Algorithm.ppo) == list(TrainSpec.model_fields)
    assert spec.target_kl is None and spec.clip_range == 0.2 and spec.vf_coef == 0.5
    assert TrainSpec(algo="ppo", target_kl=0.015).target_kl == 0.015
    assert "target_kl" in error_fields({"target_kl": 0})


def test_a_spec_saved_with_every_field_still_loads() -> None:
    # What model_dump wrote before NOT_APPLYING: every field, those an algorithm ignores too.
    saved = {**TrainSpec(algo="a2c").model_dump(mode="json"), "epochs": 1, "clip_range": 0.2}
    assert "epochs" in error_fields(saved)  # from a user, it is refused
    spec = TrainSpec.from_saved(saved)
    assert spec == TrainSpec(algo="a2c") and spec.epochs is None
    assert TrainSpec.from_saved(json.dumps(saved)) == spec


def test_atari_specs_take_cleanrl_defaults_env_options_and_the_cnn() -> None:
    spec = TrainSpec(env_id="ALE/Pong-v5", model="lstm")
    assert (spec.num_envs, spec.rollout_length, spec.minibatches, spec.epochs) == (8, 128, 4, 4)
    assert (spec.learning_rate, spec.clip_range, spec.ent_coef, spec.gamma, spec.gae_lambda) == (
        2.5e-4,
        0.1,
        0.01,
        0.99,
        0.95,
    )
    assert spec.hidden_size == 128 and spec.encoder == "cnn" and spec.clip_rewards is True
    assert (spec.frame_stack, spec.repeat_action_probability, spec.episodic_life, spec.flicker) == (
        4,
        0.25,
        False,
        0.0,
    )
    # What is given wins over the family's defaults, and the dump holds the options.
    spec = TrainSpec(env_id="ALE/Pong-v5", frame_stack=1, flicker=0.5, num_envs=16, clip_rewards=False)
    dump = spec.model_dump(mode="json")
    assert (dump["frame_stack"], dump["flicker"], dump["num_envs"], dump["clip_rewards"]) == (
        1,
        0.5,
        16,
        False,
    )
    assert TrainSpec.model_validate(dump) == spec
    assert spec.env_options().frame_stack == 1 and spec.env_options().flicker == 0.5
    # Vector envs keep the general defaults.
    assert TrainSpec(env_id="CartPole-v1").clip_rewards is False
    assert TrainSpec(env_id="CartPole-v1").encoder == "dense"


def test_env_options_and_encoders_that_do_not_fit_the_env_are_refused() -> None:
    assert error_fields({"env_id": "CartPole-v1", "frame_stack": 1}) == {"frame_stack"}
    assert error_fields({"env_id": "CueRecallPixels-v0", "episodic_life": True}) == {"episodic_life"}
    assert error_fields({"env_id": "ALE/Pong-v5", "frame_stack": 2}) == {"frame_stack"}
    assert error_fields({"env_id": "ALE/Pong-v5", "flicker": 1.5}) == {"flicker"}
    assert error_fields({"env_id": "ALE/Pong-v5", "encoder": "dense"}) == {"encoder"}
    assert error_fields({"env_id": "CartPole-v1", "encoder": "cnn"}) == {"encoder"}
    with pytest.raises(ValidationError, match="does not apply to CartPole-v1"):
        TrainSpec(env_id="CartPole-v1", repeat_action_probability=0.0)
    assert TrainSpec(env_id="CueRecallPixels-v0", flicker=0.5).flicker == 0.5
