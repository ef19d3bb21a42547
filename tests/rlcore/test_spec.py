"""TrainSpec: defaults per algorithm, bounds, and errors that name the field."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from rlcore.spec import ALGORITHM_DEFAULTS, Algorithm, TrainSpec


def error_fields(data: dict) -> set[str]:
    with pytest.raises(ValidationError) as caught:
        TrainSpec.model_validate(data)
    return {".".join(map(str, e["loc"])) or "spec" for e in caught.value.errors()}


@pytest.mark.parametrize("algo", list(Algorithm))
def test_algorithm_defaults_fill_unset_fields(algo: Algorithm) -> None:
    spec = TrainSpec(algo=algo)
    for field, value in ALGORITHM_DEFAULTS[algo].items():
        assert getattr(spec, field) == value


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
        TrainSpec.from_file(path)
