"""Exported policies act exactly as the trained one: torch, onnxruntime and load_policy agree."""

from __future__ import annotations

import json
import pickle
import struct
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from torch import nn

from rlcore.envs import make_vec_env
from rlcore.export import (
    CONFIG_FILE,
    FORMAT_VERSION,
    ONNX_FILE,
    WEIGHTS_FILE,
    export_policy,
    load_policy,
)
from rlcore.models import ActorCritic, build_policy, policy_config

OBS_DIM = 6
NUM_ACTIONS = 4
HIDDEN = 16
STEPS = 50
TOLERANCE = 1e-5

# (model, num_layers, window_length, encoder)
Variant = tuple[str, int, int, str]
VARIANTS: list[Variant] = [
    ("mlp", 1, 1, "dense"),
    ("gru_cell", 1, 1, "dense"),
    ("gru", 1, 1, "dense"),
    ("gru", 2, 1, "dense"),
    ("gru", 1, 1, "none"),
    ("lstm", 1, 1, "dense"),
    ("lstm", 2, 1, "dense"),
    ("lstm", 1, 1, "none"),
    ("window", 1, 4, "dense"),
    ("window", 1, 1, "dense"),
]
RECURRENT_VARIANTS = [v for v in VARIANTS if v[0] in ("gru", "lstm") or v[2] > 1]


def variant_id(variant: Variant) -> str:
    model, layers, window, encoder = variant
    return f"{model}-L{layers}-k{window}" + ("" if encoder == "dense" else f"-{encoder}")


def make_policy(variant: Variant, seed: int = 0) -> tuple[ActorCritic, dict[str, Any]]:
    """A random policy whose action probabilities are far from uniform.

    The trainer's policy head starts at gain 0.01 (near-uniform probabilities), which
    would make a wrong state hard to see in the probabilities; larger heads make every
    difference in the memory show.
    """
    model, layers, window, encoder = variant
    config = policy_config(model, (OBS_DIM,), NUM_ACTIONS, HIDDEN, layers, window, encoder)
    torch.manual_seed(seed)
    policy = build_policy(config)
    with torch.no_grad():
        nn.init.normal_(policy.policy_head.weight, std=1.0)
        nn.init.normal_(policy.policy_head.bias, std=0.5)
    return policy, config


def episode(batch: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random observations (T, B, obs_dim) and episode starts (T, B), with mid-episode resets."""
    rng = np.random.default_rng(seed)
    obs = rng.normal(size=(STEPS, batch, OBS_DIM)).astype(np.float32) * 2.0
    starts = np.zeros((STEPS, batch), dtype=bool)
    starts[0] = True
    starts[30, 0] = True  # every case, batch 1 included, resets mid-run
    if batch > 1:
        starts[20, [1, 4 % batch]] = True
        starts[35, batch - 1] = True
    return obs, starts


def torch_probs(
    policy: ActorCritic, obs: np.ndarray, starts: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Step the torch policy as the trainer does, carrying the state; probs, values, final state."""
    state = policy.initial_state(obs.shape[1])
    probs, values = [], []
    with torch.no_grad():
        for t in range(obs.shape[0]):
            logits, value, state = policy(
                torch.from_numpy(obs[t : t + 1]), state, torch.from_numpy(starts[t : t + 1])
            )
            probs.append(torch.softmax(logits[0].double(), -1).numpy())
            values.append(value[0].numpy())
    return np.stack(probs), np.stack(values), state.numpy()


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64) - logits.max(-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(-1, keepdims=True)


def onnx_probs(
    session: ort.InferenceSession,
    state_shape: tuple[int, ...] | None,
    obs: np.ndarray,
    starts: np.ndarray,
    feed_back: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Step the ONNX policy as a user would: zero new episodes' rows, feed state_out back."""
    batch = obs.shape[1]
    state = None if state_shape is None else np.zeros((batch, *state_shape), np.float32)
    probs, values = [], []
    for t in range(obs.shape[0]):
        feed = {"obs": obs[t]}
        if state is not None:
            state[starts[t]] = 0.0
            feed["state"] = state
        outputs = session.run(None, feed)
        probs.append(softmax(outputs[0]))
        values.append(outputs[1])
        if state is not None:
            state = outputs[2] if feed_back else np.zeros_like(state)
    return np.stack(probs), np.stack(values), state


def loaded_probs(directory: Path, obs: np.ndarray, starts: np.ndarray) -> np.ndarray:
    loaded = load_policy(directory)
    loaded.reset()
    if obs.shape[1] == 1:  # one env: unbatched observations, a bool episode start
        return np.stack(
            [loaded.action_probs(obs[t, 0], episode_starts=bool(starts[t, 0])) for t in range(STEPS)]
        )[:, None]
    return np.stack([loaded.action_probs(obs[t], episode_starts=starts[t]) for t in range(STEPS)])


def session_for(directory: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(directory / ONNX_FILE), providers=["CPUExecutionProvider"])


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread() -> Any:
    """Tiny step-by-step networks run fastest on one thread; on a busy machine, by far."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[ActorCritic, dict, Path]]:
    """Every variant exported once (each export must take well under 5 s)."""
    out = {}
    for variant in VARIANTS:
        policy, config = make_policy(variant)
        directory = tmp_path_factory.mktemp(variant_id(variant))
        began = time.perf_counter()
        export_policy(policy, config, directory, metadata={"env_id": "CartPole-v1", "step": 1000})
        assert time.perf_counter() - began < 5.0
        out[variant_id(variant)] = (policy, config, directory)
    return out


@pytest.mark.parametrize("batch", [1, 7])
@pytest.mark.parametrize("variant", VARIANTS, ids=variant_id)
def test_torch_onnx_and_load_policy_agree_over_an_episode(
    exported: dict, variant: Variant, batch: int
) -> None:
    policy, _, directory = exported[variant_id(variant)]
    obs, starts = episode(batch, seed=batch)
    state_shape = policy.state_shape if policy.is_recurrent else None

    expected, expected_values, expected_state = torch_probs(policy, obs, starts)
    got_onnx, onnx_values, onnx_state = onnx_probs(session_for(directory), state_shape, obs, starts)
    got_loaded = loaded_probs(directory, obs, starts)

    assert got_onnx.shape == expected.shape == (STEPS, batch, NUM_ACTIONS)
    assert np.abs(got_onnx - expected).max() < TOLERANCE
    assert np.abs(got_loaded - expected).max() < TOLERANCE
    assert np.abs(onnx_values - expected_values).max() < TOLERANCE
    if state_shape is not None:
        assert np.abs(onnx_state - expected_state).max() < TOLERANCE


@pytest.mark.parametrize("variant", RECURRENT_VARIANTS, ids=variant_id)
def test_the_comparison_sees_a_lost_state_or_a_missed_reset(exported: dict, variant: Variant) -> None:
    """The agreement test above can fail: dropping the state or a reset shows in the probs."""
    policy, _, directory = exported[variant_id(variant)]
    obs, starts = episode(7, seed=7)
    expected, _, _ = torch_probs(policy, obs, starts)
    session = session_for(directory)

    stateless, _, _ = onnx_probs(session, policy.state_shape, obs, starts, feed_back=False)
    assert np.abs(stateless - expected).max() > 1e-3

    no_mid_resets = np.zeros_like(starts)
    no_mid_resets[0] = True
    missed, _, _ = onnx_probs(session, policy.state_shape, obs, no_mid_resets)
    assert np.abs(missed - expected).max() > 1e-3


@pytest.mark.parametrize("variant", VARIANTS, ids=variant_id)
def test_onnx_names_shapes_and_dynamic_batch(exported: dict, variant: Variant) -> None:
    policy, _, directory = exported[variant_id(variant)]
    model = onnx.load(str(directory / ONNX_FILE))
    onnx.checker.check_model(model)

    def shapes(values: Any) -> dict[str, list[Any]]:
        return {v.name: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim] for v in values}

    state = ["batch", *policy.state_shape]
    expected_inputs = {"obs": ["batch", OBS_DIM]}
    expected_outputs = {"logits": ["batch", NUM_ACTIONS], "value": ["batch"]}
    if policy.is_recurrent:
        expected_inputs["state"] = state
        expected_outputs["state_out"] = state
    assert shapes(model.graph.input) == expected_inputs
    assert shapes(model.graph.output) == expected_outputs
    assert [v.name for v in model.graph.input] == list(expected_inputs)
    assert [v.name for v in model.graph.output] == list(expected_outputs)

    # policy.json describes the same graph for callers outside Python.
    document = json.loads((directory / CONFIG_FILE).read_text())
    assert document["onnx"]["inputs"] == expected_inputs
    assert document["onnx"]["outputs"] == expected_outputs

    # One session, two batch sizes.
    session = session_for(directory)
    for batch in (1, 1000):
        feed = {"obs": np.ones((batch, OBS_DIM), np.float32)}
        if policy.is_recurrent:
            feed["state"] = np.zeros((batch, *policy.state_shape), np.float32)
        outputs = session.run(None, feed)
        assert outputs[0].shape == (batch, NUM_ACTIONS)
        assert outputs[1].shape == (batch,)
        if policy.is_recurrent:
            assert outputs[2].shape == (batch, *policy.state_shape)
        # Every row got the same observation and state, so the same answer.
        np.testing.assert_allclose(outputs[0], np.broadcast_to(outputs[0][:1], outputs[0].shape), atol=1e-6)


def test_policy_json_holds_config_and_metadata(tmp_path: Path) -> None:
    policy, config = make_policy(("lstm", 2, 1, "dense"))
    metadata = {
        "env_id": "CartPole-v1",
        "algo": "ppo",
        "spec": {"lr": 3e-4, "hidden": (64, 64)},
        "step": np.int64(20_000),
        "mean_return": np.float32(195.5),
        "best_return": float("nan"),  # strict JSON has no NaN: stored as null
    }
    export_policy(policy, config, tmp_path, metadata=metadata)

    document = json.loads((tmp_path / CONFIG_FILE).read_text())  # plain JSON: json module reads it
    assert document["format_version"] == FORMAT_VERSION
    assert document["config"] == config
    assert document["metadata"] == {
        "env_id": "CartPole-v1",
        "algo": "ppo",
        "spec": {"lr": 3e-4, "hidden": [64, 64]},
        "step": 20_000,
        "mean_return": 195.5,
        "best_return": None,
    }
    loaded = load_policy(tmp_path)
    assert loaded.config == config
    assert loaded.metadata["env_id"] == "CartPole-v1"


def test_export_leaves_the_policy_alone(tmp_path: Path) -> None:
    policy, config = make_policy(("gru", 1, 1, "dense"))
    policy.train()
    before = {k: v.clone() for k, v in policy.state_dict().items()}
    export_policy(policy, config, tmp_path)
    assert policy.training
    assert all(torch.equal(before[k], v) for k, v in policy.state_dict().items())


def test_export_refuses_a_config_that_does_not_describe_the_policy(tmp_path: Path) -> None:
    policy, config = make_policy(("gru", 1, 1, "dense"))
    with pytest.raises(ValueError, match="does not match"):
        export_policy(policy, {**config, "model": "lstm"}, tmp_path)
    with pytest.raises(ValueError, match="buildable"):
        export_policy(policy, {**config, "model": "transformer"}, tmp_path)
    assert list(tmp_path.iterdir()) == []  # nothing half-written


def test_no_pickle_anywhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    policy, config = make_policy(("lstm", 1, 1, "dense"))
    export_policy(policy, config, tmp_path)

    # Exactly three files, none of them a pickle or a torch zip archive.
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([WEIGHTS_FILE, CONFIG_FILE, ONNX_FILE])
    for path in tmp_path.iterdir():
        head = path.read_bytes()[:4]
        assert not head.startswith(b"\x80"), f"{path.name} starts like a pickle"
        assert not head.startswith(b"PK"), f"{path.name} is a zip (torch.save) archive"

    # The weights are a safetensors file: an 8-byte header length, a JSON header naming
    # every tensor of the state_dict, then raw bytes.
    raw = (tmp_path / WEIGHTS_FILE).read_bytes()
    (header_length,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + header_length])
    header.pop("__metadata__", None)
    assert set(header) == set(policy.state_dict())
    assert all(entry["dtype"] == "F32" for entry in header.values())

    # Loading never touches an unpickler.
    def forbidden(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("pickle used while loading a policy")

    monkeypatch.setattr(torch, "load", forbidden)
    monkeypatch.setattr(pickle, "load", forbidden)
    monkeypatch.setattr(pickle, "loads", forbidden)
    monkeypatch.setattr(pickle, "Unpickler", forbidden)
    loaded = load_policy(tmp_path)
    assert loaded.act(np.zeros(OBS_DIM, np.float32), deterministic=True) in range(NUM_ACTIONS)


def test_load_policy_accepts_the_directory_or_either_file(exported: dict) -> None:
    _, _, directory = exported[variant_id(("gru", 1, 1, "dense"))]
    obs = np.linspace(-1, 1, OBS_DIM, dtype=np.float32)
    results = [
        load_policy(path).action_probs(obs)
        for path in (directory, str(directory), directory / WEIGHTS_FILE, directory / CONFIG_FILE)
    ]
    for probs in results[1:]:
        np.testing.assert_array_equal(probs, results[0])


@pytest.fixture
def gru_export(tmp_path: Path) -> Path:
    policy, config = make_policy(("gru", 1, 1, "dense"))
    export_policy(policy, config, tmp_path)
    return tmp_path


def assert_clean_value_error(excinfo: pytest.ExceptionInfo[ValueError]) -> None:
    """Wrapped, not chained: the user sees our message, not a traceback from torch."""
    assert excinfo.value.__cause__ is None
    assert excinfo.value.__suppress_context__ or excinfo.value.__context__ is None


def test_unknown_model_is_a_clear_value_error(gru_export: Path) -> None:
    path = gru_export / CONFIG_FILE
    document = json.loads(path.read_text())
    document["config"]["model"] = "transformer"
    path.write_text(json.dumps(document))
    with pytest.raises(ValueError, match=r"policy\.json.*unknown model variant 'transformer'") as excinfo:
        load_policy(gru_export)
    assert_clean_value_error(excinfo)


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty"])
def test_corrupted_weights_are_a_clear_value_error(gru_export: Path, damage: str) -> None:
    path = gru_export / WEIGHTS_FILE
    raw = path.read_bytes()
    path.write_bytes(
        {"garbage": b"\x00not a safetensors file" * 10, "truncated": raw[: len(raw) // 2], "empty": b""}[
            damage
        ]
    )
    with pytest.raises(
        ValueError, match=r"policy\.safetensors is not a readable safetensors file"
    ) as excinfo:
        load_policy(gru_export)
    assert_clean_value_error(excinfo)


def test_weights_of_another_architecture_are_a_clear_value_error(gru_export: Path) -> None:
    path = gru_export / CONFIG_FILE
    document = json.loads(path.read_text())
    document["config"]["hidden_size"] = HIDDEN * 2
    path.write_text(json.dumps(document))
    with pytest.raises(ValueError, match="does not match the architecture") as excinfo:
        load_policy(gru_export)
    assert_clean_value_error(excinfo)


def test_bad_json_newer_format_and_missing_files_are_value_errors(gru_export: Path, tmp_path: Path) -> None:
    config_path = gru_export / CONFIG_FILE
    good = config_path.read_text()

    document = json.loads(good)
    document["format_version"] = FORMAT_VERSION + 1
    config_path.write_text(json.dumps(document))
    with pytest.raises(ValueError, match="format_version"):
        load_policy(gru_export)

    config_path.write_text(good[: len(good) // 2])
    with pytest.raises(ValueError, match="not valid JSON"):
        load_policy(gru_export)

    config_path.write_text(good)
    (gru_export / WEIGHTS_FILE).unlink()
    with pytest.raises(ValueError, match="not found"):
        load_policy(gru_export)

    with pytest.raises(ValueError, match="not a policy export"):
        load_policy(tmp_path / "nowhere.pt")


def test_act_keeps_memory_batchness_and_reproducible_sampling(exported: dict) -> None:
    _, _, directory = exported[variant_id(("lstm", 2, 1, "dense"))]
    obs, _ = episode(5, seed=3)

    # Unbatched in, int out; batched in, int64 array out.
    single = load_policy(directory)
    action = single.act(obs[0, 0])
    assert isinstance(action, int) and 0 <= action < NUM_ACTIONS
    batched = load_policy(directory)
    actions = batched.act(obs[0])
    assert isinstance(actions, np.ndarray) and actions.shape == (5,) and actions.dtype == np.int64

    # Deterministic actions are the argmax of the probabilities a twin computes.
    greedy, twin = load_policy(directory), load_policy(directory)
    for t in range(10):
        np.testing.assert_array_equal(
            greedy.act(obs[t], deterministic=True), twin.action_probs(obs[t]).argmax(-1)
        )

    # The memory matters: the same observation after a different history gives other probs,
    # and reset() forgets it.
    fresh = load_policy(directory).action_probs(obs[10])
    primed = load_policy(directory)
    for t in range(10):
        primed.action_probs(obs[t])
    assert np.abs(primed.action_probs(obs[10]) - fresh).max() > 1e-3
    primed.reset()
    np.testing.assert_allclose(primed.action_probs(obs[10]), fresh, atol=1e-7)

    # Seeded sampling is reproducible, from load_policy and from reset(seed=...).
    def run(loaded: Any) -> np.ndarray:
        return np.stack([loaded.act(obs[t]) for t in range(STEPS)])

    first = run(load_policy(directory, seed=11))
    np.testing.assert_array_equal(first, run(load_policy(directory, seed=11)))
    reseeded = load_policy(directory, seed=99)
    reseeded.reset(seed=11)
    np.testing.assert_array_equal(first, run(reseeded))
    assert not np.array_equal(first, run(load_policy(directory, seed=12)))


def test_sampled_actions_follow_the_probabilities(exported: dict) -> None:
    _, _, directory = exported[variant_id(("mlp", 1, 1, "dense"))]
    loaded = load_policy(directory, seed=0)
    obs = np.tile(np.linspace(-2, 2, OBS_DIM, dtype=np.float32), (20_000, 1))
    probs = load_policy(directory).action_probs(obs[:1])[0]
    counts = np.bincount(loaded.act(obs), minlength=NUM_ACTIONS) / len(obs)
    np.testing.assert_allclose(counts, probs, atol=0.015)


def test_reset_rows_and_batch_checks(exported: dict) -> None:
    _, _, directory = exported[variant_id(("gru", 2, 1, "dense"))]
    obs, _ = episode(4, seed=5)
    a, b = load_policy(directory), load_policy(directory)
    for t in range(5):
        a.action_probs(obs[t])
        b.action_probs(obs[t])
    mask = np.array([False, True, False, True])
    a.reset_rows(mask)  # the method and the argument do the same thing
    np.testing.assert_array_equal(a.action_probs(obs[5]), b.action_probs(obs[5], episode_starts=mask))
    assert np.all(a.state[~mask] != 0)

    with pytest.raises(ValueError, match="reset"):
        a.act(obs[0, :2])  # 2 envs while the memory holds 4
    a.reset(2)
    assert a.act(obs[0, :2]).shape == (2,)
    with pytest.raises(ValueError, match="observation shape"):
        a.act(np.zeros((2, OBS_DIM + 1), np.float32))
    with pytest.raises(ValueError, match="mask has 3 entries"):
        a.reset_rows([True, False, True])


# --- pixel policies: raw uint8 frames in, scaled inside the graph --------------------

PIXEL_STEPS = 200
PONG_ACTIONS = 6
PIXEL_VARIANTS: list[Variant] = [("mlp", 1, 1, "cnn"), ("gru", 1, 1, "cnn"), ("lstm", 1, 1, "cnn")]


@pytest.fixture(scope="module")
def pong_frames() -> tuple[np.ndarray, np.ndarray]:
    """200 steps of 2 Pong games (4 stacked 84x84 uint8 frames) under random actions, and
    the episode starts of a run where env 1 starts a new episode at step 120."""
    from ale_py.vector_env import AtariVectorEnv

    envs = AtariVectorEnv("pong", num_envs=2, autoreset_mode="SameStep", reward_clipping=False, stack_num=4)
    try:
        obs, _ = envs.reset(seed=0)
        rng = np.random.default_rng(0)
        frames = []
        for _ in range(PIXEL_STEPS):
            frames.append(obs)
            obs, *_ = envs.step(rng.integers(0, PONG_ACTIONS, size=2))
    finally:
        envs.close()
    starts = np.zeros((PIXEL_STEPS, 2), dtype=bool)
    starts[0] = True
    starts[120, 1] = True
    return np.stack(frames), starts


@pytest.fixture(scope="module")
def pixel_exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[ActorCritic, dict, Path]]:
    out = {}
    for variant in PIXEL_VARIANTS:
        model, layers, window, encoder = variant
        config = policy_config(model, (4, 84, 84), PONG_ACTIONS, HIDDEN, layers, window, encoder)
        torch.manual_seed(0)
        policy = build_policy(config)
        with torch.no_grad():
            nn.init.normal_(policy.policy_head.weight, std=1.0)
        directory = tmp_path_factory.mktemp(f"pixel-{model}")
        export_policy(policy, config, directory, metadata={"env_id": "Pong"})
        out[model] = (policy, config, directory)
    return out


@pytest.mark.parametrize("model", ["mlp", "gru", "lstm"])
def test_pixel_policies_agree_in_torch_onnx_and_load_policy_over_pong_frames(
    pixel_exported: dict, pong_frames: tuple[np.ndarray, np.ndarray], model: str
) -> None:
    policy, _, directory = pixel_exported[model]
    obs, starts = pong_frames
    assert obs.dtype == np.uint8 and obs.shape == (PIXEL_STEPS, 2, 4, 84, 84)
    assert len(np.unique(obs.reshape(PIXEL_STEPS, -1), axis=0)) > PIXEL_STEPS // 2, "the frames move"
    state_shape = policy.state_shape if policy.is_recurrent else None

    expected, expected_values, expected_state = torch_probs(policy, obs, starts)
    got_onnx, onnx_values, onnx_state = onnx_probs(session_for(directory), state_shape, obs, starts)
    loaded = load_policy(directory)
    got_loaded = np.stack([loaded.action_probs(obs[t], episode_starts=starts[t]) for t in range(PIXEL_STEPS)])

    assert got_onnx.shape == expected.shape == (PIXEL_STEPS, 2, PONG_ACTIONS)
    assert np.abs(got_onnx - expected).max() < TOLERANCE
    assert np.abs(got_loaded - expected).max() < TOLERANCE
    assert np.abs(onnx_values - expected_values).max() < TOLERANCE
    assert expected.std(axis=(0, 1)).max() > 1e-3, "the probabilities follow the frames"
    if state_shape is not None:
        assert np.abs(onnx_state - expected_state).max() < TOLERANCE
        # The memory matters: dropping it shows, so the agreement above is no accident.
        stateless, _, _ = onnx_probs(session_for(directory), state_shape, obs, starts, feed_back=False)
        assert np.abs(stateless - expected).max() > 1e-3


@pytest.mark.parametrize("model", ["mlp", "gru", "lstm"])
def test_pixel_onnx_takes_uint8_frames_with_a_dynamic_batch(
    pixel_exported: dict, pong_frames: tuple[np.ndarray, np.ndarray], model: str
) -> None:
    policy, _, directory = pixel_exported[model]
    onnx_model = onnx.load(str(directory / ONNX_FILE))
    obs_input = onnx_model.graph.input[0]
    assert obs_input.name == "obs" and obs_input.type.tensor_type.elem_type == onnx.TensorProto.UINT8
    assert [d.dim_param or d.dim_value for d in obs_input.type.tensor_type.shape.dim] == ["batch", 4, 84, 84]
    document = json.loads((directory / CONFIG_FILE).read_text())
    assert document["config"]["encoder"] == "cnn"
    assert document["onnx"]["dtypes"]["obs"] == "uint8"
    assert document["onnx"]["inputs"]["obs"] == ["batch", 4, 84, 84]
    assert set(document["onnx"]["dtypes"]) == {*document["onnx"]["inputs"], *document["onnx"]["outputs"]}

    session = session_for(directory)
    frame = pong_frames[0][150, 0]
    for batch in (1, 5):
        feed = {"obs": np.repeat(frame[None], batch, axis=0)}
        if policy.is_recurrent:
            feed["state"] = np.zeros((batch, *policy.state_shape), np.float32)
        outputs = session.run(None, feed)
        assert outputs[0].shape == (batch, PONG_ACTIONS) and outputs[1].shape == (batch,)
        np.testing.assert_allclose(outputs[0], np.broadcast_to(outputs[0][:1], outputs[0].shape), atol=1e-6)
    # The graph scales the frames itself: float frames are not what it takes.
    with pytest.raises(Exception, match=r"expected: \(tensor\(uint8\)\)"):
        session.run(None, {**feed, "obs": feed["obs"].astype(np.float32)})
    # load_policy takes one env's frames unbatched, as the trainer's envs give them.
    assert load_policy(directory).act(frame, deterministic=True) in range(PONG_ACTIONS)


def test_a_pixel_policy_agrees_in_torch_and_onnx_over_a_whole_pong_game(pixel_exported: dict) -> None:
    """A whole game of rlcore's Pong (sticky actions, no-op starts), played by the ONNX policy."""
    policy, _, directory = pixel_exported["lstm"]
    session = session_for(directory)
    envs = make_vec_env("ALE/Pong-v5", 1, seed=3)
    obs, _ = envs.reset(seed=3)
    torch_state = policy.initial_state(1)
    onnx_state = np.zeros((1, *policy.state_shape), np.float32)
    no_start = torch.zeros(1, 1, dtype=torch.bool)
    rng = np.random.default_rng(0)
    steps, worst = 0, 0.0
    with torch.no_grad():
        while True:
            logits, _, torch_state = policy(torch.from_numpy(obs[None]), torch_state, no_start)
            expected = torch.softmax(logits[0, 0].double(), -1).numpy()
            onnx_logits, _, onnx_state = session.run(None, {"obs": obs, "state": onnx_state})
            got = softmax(onnx_logits)[0]
            worst = max(worst, float(np.abs(got - expected).max()))
            obs, _, _, _, info = envs.step(np.array([rng.choice(PONG_ACTIONS, p=got / got.sum())]))
            steps += 1
            if info["game_over"][0]:
                break
    envs.close()
    assert steps > 500, "a game of Pong lasts until one side scores 21"
    assert worst < TOLERANCE


# --- MultiDiscrete and Box actions ---------------------------------------------------

ACTION_CASES = {
    "multi_discrete-gru": ("gru", {"kind": "multi_discrete", "nvec": [3, 2, 4]}),
    "gaussian-lstm-clip": (
        "lstm",
        {"kind": "gaussian", "low": [-2.0, -1.0], "high": [2.0, 0.5], "squash": "clip"},
    ),
    "gaussian-gru-tanh": (
        "gru",
        {"kind": "gaussian", "low": [-2.0, -1.0], "high": [2.0, 0.5], "squash": "tanh"},
    ),
}


@pytest.fixture(scope="module")
def action_exports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[ActorCritic, Path]]:
    out = {}
    for name, (model, action) in ACTION_CASES.items():
        config = policy_config(model, (OBS_DIM,), action, HIDDEN, 1, 1, "dense")
        torch.manual_seed(3)
        policy = build_policy(config)
        with torch.no_grad():
            nn.init.normal_(policy.policy_head.weight, std=1.0)
            if policy.log_std is not None:
                policy.log_std.copy_(torch.tensor([-0.5, 0.3]))
        directory = tmp_path_factory.mktemp(name)
        export_policy(policy, config, directory)
        out[name] = (policy, directory)
    return out


@pytest.mark.parametrize("name", list(ACTION_CASES))
def test_action_kinds_agree_in_torch_onnx_and_load_policy_over_a_sequence(action_exports, name) -> None:
    policy, directory = action_exports[name]
    obs, starts = episode(5, seed=4)
    session = session_for(directory)
    document = json.loads((directory / CONFIG_FILE).read_text())
    assert document["config"]["action"] == document["onnx"]["action"] == ACTION_CASES[name][1]
    outputs = [o.name for o in session.get_outputs()]
    gaussian = policy.action_spec["kind"] == "gaussian"
    heads = ["mean", "log_std"] if gaussian else ["logits"]
    assert outputs == [*heads, "value", "state_out"] == list(document["onnx"]["outputs"])

    state = policy.initial_state(5)
    onnx_state = np.zeros((5, *policy.state_shape), np.float32)
    loaded = load_policy(directory)
    for t in range(STEPS):
        with torch.no_grad():
            params, value, state = policy(
                torch.from_numpy(obs[t : t + 1]), state, torch.from_numpy(starts[t : t + 1])
            )
        onnx_state[starts[t]] = 0.0
        got = dict(zip(outputs, session.run(None, {"obs": obs[t], "state": onnx_state}), strict=True))
        onnx_state = got["state_out"]
        from_loaded = loaded.action_dist_params(obs[t], episode_starts=starts[t])
        expected = dict(
            zip(heads, params[0].numpy().reshape(5, len(heads), -1).transpose(1, 0, 2), strict=True)
        )
        if not gaussian:
            expected = {"logits": params[0].numpy()}
        for head in heads:
            np.testing.assert_allclose(got[head], expected[head], atol=TOLERANCE, rtol=0)
            np.testing.assert_allclose(from_loaded[head], expected[head], atol=TOLERANCE, rtol=0)
        np.testing.assert_allclose(got["value"], value[0].numpy(), atol=TOLERANCE, rtol=0)
        np.testing.assert_allclose(got["state_out"], state.numpy(), atol=TOLERANCE, rtol=0)
    # 50 steps with resets moved the memory: the parameters differ across envs.
    assert np.abs(expected[heads[0]][0] - expected[heads[0]][1]).max() > 1e-2


@pytest.mark.parametrize("name", list(ACTION_CASES))
def test_load_policy_acts_for_each_action_kind(action_exports, name) -> None:
    _policy, directory = action_exports[name]
    action = ACTION_CASES[name][1]
    obs, _ = episode(4, seed=5)
    one = load_policy(directory, seed=0).act(obs[0, 0])
    batch = load_policy(directory, seed=0).act(obs[0])
    again = load_policy(directory, seed=0).act(obs[0])
    np.testing.assert_array_equal(batch, again)  # seeded sampling is reproducible
    greedy = load_policy(directory).act(obs[0], deterministic=True)
    params = load_policy(directory).action_dist_params(obs[0])
    if action["kind"] == "multi_discrete":
        assert one.shape == (3,) and one.dtype == np.int64
        assert batch.shape == (4, 3) and batch.dtype == np.int64
        assert (batch < np.array(action["nvec"])).all() and (batch >= 0).all()
        split = np.split(params["logits"], np.cumsum(action["nvec"])[:-1], axis=-1)
        np.testing.assert_array_equal(greedy, np.stack([p.argmax(-1) for p in split], -1))
        probs = load_policy(directory).action_probs(obs[0])
        assert probs.shape == (4, 9)
        for p in np.split(probs, np.cumsum(action["nvec"])[:-1], axis=-1):
            np.testing.assert_allclose(p.sum(-1), 1.0, atol=1e-9)
        return
    low, high = np.array(action["low"], np.float32), np.array(action["high"], np.float32)
    assert one.shape == (2,) and batch.shape == (4, 2) and batch.dtype == np.float32
    assert (batch >= low).all() and (batch <= high).all()
    if action["squash"] == "clip":
        np.testing.assert_allclose(greedy, np.clip(params["mean"], low, high), atol=1e-6)
    else:
        expected = low + (np.tanh(params["mean"]) + 1) / 2 * (high - low)
        np.testing.assert_allclose(greedy, expected, atol=1e-6)
    with pytest.raises(ValueError, match="action_dist_params"):
        load_policy(directory).action_probs(obs[0])
    # Samples spread around the mean with the policy's std (wide log_std [-0.5, 0.3]).
    loaded = load_policy(directory, seed=1)
    draws = np.stack([loaded.act(obs[0, :1].repeat(2000, 0)) for _ in range(1)])[0]
    assert draws.std(0).min() > 0.05
