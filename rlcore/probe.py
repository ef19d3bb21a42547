"""The memory inspector: what a policy's memory holds about what its env hides.

For an env that hides part of its state (`rlcore.envs.hidden`: masked CartPole's
velocities, CueRecall's cue), collect episodes of the policy (`rlcore.replay`, without
frames) and fit a linear probe from the policy's memory at each step (`Replay.hidden`:
the recurrent state, or the features its heads read) to each hidden variable: ridge
regression for a continuous variable, scored by R², L2-regularised multinomial logistic
regression for a discrete one, scored by accuracy. Probes are fitted on some episodes
and scored on others (held out whole, so no step of a scored episode was seen), overall,
on the steps whose observation does not show the variable (``unseen``), and per bin of
steps since the observation last showed it (since the episode started, for a variable
no observation shows).

The same probe fitted on the current observation alone is the baseline: a memory
that holds nothing beyond the observation scores what the baseline scores. What a
memory adds is the gap between the two.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rlcore.envs import EnvOptions, HiddenVariable, hidden_variables, make_vec_env
from rlcore.models import ActorCritic
from rlcore.replay import Replay, hidden_kind, load_export, memory_on, record_episodes

__all__ = [
    "ALPHAS",
    "BIN_EDGES",
    "BinScore",
    "LinearProbe",
    "ProbeReport",
    "ProbeScore",
    "VariableProbe",
    "accuracy",
    "fit_logistic",
    "fit_probe",
    "fit_ridge",
    "probe_export",
    "probe_policy",
    "probe_replays",
    "r2_score",
]

# Regularisation strengths tried, per row of standardised features (ridge: lambda / n).
ALPHAS = (1e-6, 1e-4, 1e-3, 1e-2, 1e-1, 1.0)
# Bins of "steps since last shown": one per step up to 16, then about x1.5 wider each.
BIN_EDGES = (*range(17), 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 2048, 4096, 8192)
MIN_BIN_COUNT = 10  # rows a bin needs for a score
FOLDS = 4  # cross-validation folds (of episodes) that choose alpha
MAX_BASELINE_FEATURES = 4096  # wider observations (Atari frame stacks) get no baseline
_MIN_SCALE = 1e-8


# ------------------------------------------------------------------ linear probes


@dataclass(frozen=True)
class LinearProbe:
    """A linear map from standardised features to a continuous value or to class scores."""

    kind: str  # "continuous" | "discrete"
    mean: np.ndarray  # (d,) feature means
    scale: np.ndarray  # (d,) feature standard deviations
    weights: np.ndarray  # (d,) | (d, K)
    bias: np.ndarray  # () | (K,)
    classes: np.ndarray | None  # (K,) the labels, for discrete probes
    alpha: float
    # Continuous: the range of the targets it was fitted on. Predictions are clipped to
    # it, so that a memory in a state never seen in fitting (saturated units, a cart at
    # the edge) gives a bounded error rather than an extrapolation far off the scale.
    low: float = -math.inf
    high: float = math.inf

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Predicted values (n,), or labels (n,) for discrete probes."""
        scores = _standardise(features, self.mean, self.scale) @ self.weights + self.bias
        if self.kind == "continuous":
            return np.clip(scores, self.low, self.high)
        assert self.classes is not None
        return self.classes[np.argmax(scores, axis=1)]


def _standardise(x: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
    return (np.asarray(x, dtype=np.float64) - mean) / scale


def _moments(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=np.float64)
    scale = x.std(axis=0)
    # A constant feature carries nothing; dividing by 1 leaves it at zero once centred.
    return x.mean(axis=0), np.where(scale > _MIN_SCALE, scale, 1.0)


def _ridge_path(x: np.ndarray, y: np.ndarray, alphas: tuple[float, ...]) -> list[LinearProbe]:
    """Ridge probes for each alpha, from one pass over the data (normal equations)."""
    mean, scale = _moments(x)
    z = _standardise(x, mean, scale)
    y = np.asarray(y, dtype=np.float64)
    y_mean = y.mean()
    gram = z.T @ z
    moment = z.T @ (y - y_mean)
    eye = np.eye(z.shape[1])
    return [
        LinearProbe(
            "continuous",
            mean,
            scale,
            np.linalg.solve(gram + alpha * len(z) * eye, moment),
            np.asarray(y_mean),
            None,
            alpha,
            float(y.min()),
            float(y.max()),
        )
        for alpha in alphas
    ]


def fit_ridge(x: np.ndarray, y: np.ndarray, alpha: float) -> LinearProbe:
    """Ridge regression of y (n,) on standardised x (n, d): min |y - zw - b|² / n + alpha |w|²
    (predictions clipped to the range of y)."""
    (probe,) = _ridge_path(x, y, (alpha,))
    return probe


def fit_logistic(x: np.ndarray, y: np.ndarray, alpha: float, max_iter: int = 200) -> LinearProbe:
    """Multinomial logistic regression of labels y (n,) on standardised x (n, d).

    Minimises the mean log-loss plus alpha / 2 |W|² (the biases are not penalised) with
    L-BFGS. With a single label in y the probe always predicts it.
    """
    mean, scale = _moments(x)
    z = _standardise(x, mean, scale)
    classes, labels = np.unique(np.asarray(y), return_inverse=True)
    n, d = z.shape
    k = len(classes)
    if k == 1:
        return LinearProbe("discrete", mean, scale, np.zeros((d, 1)), np.zeros(1), classes, alpha)
    onehot = np.eye(k)[labels]

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        weights, bias = theta[: d * k].reshape(d, k), theta[d * k :]
        scores = z @ weights + bias
        scores -= scores.max(axis=1, keepdims=True)
        log_norm = np.log(np.exp(scores).sum(axis=1, keepdims=True))
        log_p = scores - log_norm
        value = -(onehot * log_p).sum() / n + 0.5 * alpha * (weights**2).sum()
        residual = (np.exp(log_p) - onehot) / n
        grad_w = z.T @ residual + alpha * weights
        return float(value), np.concatenate([grad_w.ravel(), residual.sum(axis=0)])

    from scipy.optimize import minimize  # a second to import: see stats.aggregates.trim_mean

    result = minimize(loss, np.zeros(d * k + k), jac=True, method="L-BFGS-B", options={"maxiter": max_iter})
    theta = result.x
    return LinearProbe("discrete", mean, scale, theta[: d * k].reshape(d, k), theta[d * k :], classes, alpha)


def r2_score(y: np.ndarray, prediction: np.ndarray) -> float | None:
    """1 - SSE / SST around y's own mean; None where y is constant."""
    y = np.asarray(y, dtype=np.float64)
    total = ((y - y.mean()) ** 2).sum()
    if total <= 1e-12 * max(len(y), 1):
        return None
    return float(1.0 - ((y - prediction) ** 2).sum() / total)


def accuracy(y: np.ndarray, prediction: np.ndarray) -> float:
    """Fraction of labels predicted exactly."""
    return float(np.mean(np.asarray(y) == np.asarray(prediction)))


def _score(kind: str, y: np.ndarray, prediction: np.ndarray) -> float | None:
    return r2_score(y, prediction) if kind == "continuous" else accuracy(y, prediction)


def _fit_all(kind: str, x: np.ndarray, y: np.ndarray, alphas: tuple[float, ...]) -> list[LinearProbe]:
    if kind == "continuous":
        return _ridge_path(x, y, alphas)
    return [fit_logistic(x, y, alpha) for alpha in alphas]


def fit_probe(
    kind: str,
    x: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray,
    alphas: tuple[float, ...] = ALPHAS,
    seed: int = 0,
    folds: int = FOLDS,
) -> LinearProbe:
    """A probe of `kind` with alpha chosen by cross-validation over groups (episodes), refitted on all rows.

    The groups are split into `folds` folds (fewer with fewer groups); the alpha with the
    best mean held-out score wins. With a single group, the middle alpha is taken.
    """
    unique = np.unique(groups)
    if kind == "discrete":
        # L-BFGS per alpha is the slow part; the weakest penalties barely differ.
        alphas = tuple(a for a in alphas if a >= 1e-4) or alphas
    if len(unique) < 2:
        return _fit_all(kind, x, y, (alphas[len(alphas) // 2],))[0]
    # Each group's fold: the groups shuffled, then dealt round like cards.
    shuffled = np.random.default_rng(seed).permutation(unique)
    fold_of_sorted = np.empty(len(unique), dtype=np.int64)
    fold_of_sorted[np.searchsorted(unique, shuffled)] = np.arange(len(unique)) % folds
    fold = fold_of_sorted[np.searchsorted(unique, groups)]
    totals = np.zeros(len(alphas))
    for k in np.unique(fold):
        val = fold == k
        candidates = _fit_all(kind, x[~val], y[~val], alphas)
        scores = [_score(kind, y[val], probe.predict(x[val])) for probe in candidates]
        totals += [-math.inf if score is None else score for score in scores]
    return _fit_all(kind, x, y, (alphas[int(np.argmax(totals))],))[0]


# ------------------------------------------------------------------ reports


@dataclass(frozen=True)
class BinScore:
    """Score on the held-out steps whose steps-since-shown is in [lo, hi)."""

    lo: int
    hi: int
    count: int
    score: float | None  # None with fewer than MIN_BIN_COUNT steps (or a constant target)

    def to_json(self) -> dict[str, Any]:
        return {"lo": self.lo, "hi": self.hi, "count": self.count, "score": _finite(self.score)}


@dataclass(frozen=True)
class ProbeScore:
    """A probe's held-out scores: all steps, steps not shown, and per bin."""

    overall: float | None
    unseen: float | None  # on the steps whose observation does not show the variable
    alpha: float  # the regularisation chosen
    bins: tuple[BinScore, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "overall": _finite(self.overall),
            "unseen": _finite(self.unseen),
            "alpha": self.alpha,
            "bins": [b.to_json() for b in self.bins],
        }


@dataclass(frozen=True)
class VariableProbe:
    """One hidden variable: the probe on the memory and the baseline on the observation."""

    variable: HiddenVariable
    metric: str  # "r2" | "accuracy"
    binned_by: str  # "steps_since_visible" | "steps_since_start"
    chance: float  # a probe that knows nothing: R² 0, or the majority class's share
    state: ProbeScore
    observation: ProbeScore | None  # None for observations too wide to probe

    def to_json(self) -> dict[str, Any]:
        return {
            **self.variable.to_json(),
            "metric": self.metric,
            "binned_by": self.binned_by,
            "chance": self.chance,
            "state": self.state.to_json(),
            "observation": None if self.observation is None else self.observation.to_json(),
        }


@dataclass(frozen=True)
class ProbeReport:
    """What a policy's memory holds about each hidden variable of its env."""

    env_id: str
    hidden_kind: str  # "state" | "features" (see `rlcore.replay.Replay`)
    hidden_size: int
    played_by_policy: bool  # False: the episodes were played by another policy (`behaviour`)
    seed: int
    train_episodes: int
    test_episodes: int
    train_steps: int
    test_steps: int
    mean_return: float  # of the episodes probed
    variables: tuple[VariableProbe, ...]

    def variable(self, name: str) -> VariableProbe:
        return next(v for v in self.variables if v.variable.name == name)

    def to_json(self) -> dict[str, Any]:
        return {
            "env_id": self.env_id,
            "hidden_kind": self.hidden_kind,
            "hidden_size": self.hidden_size,
            "played_by_policy": self.played_by_policy,
            "seed": self.seed,
            "episodes": {"train": self.train_episodes, "test": self.test_episodes},
            "steps": {"train": self.train_steps, "test": self.test_steps},
            "mean_return": self.mean_return,
            "variables": [v.to_json() for v in self.variables],
        }


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else round(value, 6)


def _bins(kind: str, y: np.ndarray, prediction: np.ndarray, lag: np.ndarray) -> tuple[BinScore, ...]:
    """Scores per bin of `lag`. A continuous bin's R² is against the variance of all the
    rows, not the bin's own: at an episode's start, where every velocity is near zero, a
    bin's own variance is tiny and its R² meaningless."""
    variance = float(np.var(y)) if kind == "continuous" else 0.0
    out = []
    for lo, hi in itertools.pairwise(BIN_EDGES):
        rows = (lag >= lo) & (lag < hi)
        count = int(rows.sum())
        if count == 0:
            continue
        score: float | None = None
        if count >= MIN_BIN_COUNT and kind == "discrete":
            score = accuracy(y[rows], prediction[rows])
        elif count >= MIN_BIN_COUNT and variance > 0:
            score = 1.0 - float(np.mean((y[rows] - prediction[rows]) ** 2)) / variance
        out.append(BinScore(lo, hi, count, score))
    return tuple(out)


def _probe_score(
    kind: str,
    x: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray,
    test: np.ndarray,
    lag: np.ndarray,
    unseen: np.ndarray,
    seed: int,
) -> ProbeScore:
    probe = fit_probe(kind, x[~test], y[~test], groups[~test], seed=seed)
    prediction = probe.predict(x[test])
    y_test, hidden_rows = y[test], unseen[test]
    return ProbeScore(
        overall=_score(kind, y_test, prediction),
        unseen=_score(kind, y_test[hidden_rows], prediction[hidden_rows]) if hidden_rows.any() else None,
        alpha=probe.alpha,
        bins=_bins(kind, y_test, prediction, lag[test]),
    )


def probe_replays(
    replays: list[Replay],
    seed: int = 0,
    test_fraction: float = 0.25,
    memory: list[np.ndarray] | None = None,
    memory_kind: str | None = None,
) -> ProbeReport:
    """Fit and score the probes on recorded episodes (at least 2, of one env and policy).

    A `test_fraction` of the episodes (at least one), drawn with `seed`, is held out for
    the scores; the probes are fitted on the rest. `memory` (one (T, H) array per
    episode, see `rlcore.replay.memory_on`) replaces the memory the replays recorded:
    another policy's, on the same episodes; `memory_kind` is its kind ("state" or "features").
    """
    if len(replays) < 2:
        raise ValueError(f"probing needs at least 2 episodes, got {len(replays)}")
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be between 0 and 1, got {test_fraction}")
    first = replays[0]
    if not first.hidden_variables:
        raise ValueError(f"{first.env_id} hides nothing to probe")
    groups = np.concatenate([np.full(r.steps, i) for i, r in enumerate(replays)])
    n_test = min(len(replays) - 1, max(1, round(test_fraction * len(replays))))
    test_episodes = np.random.default_rng(seed).permutation(len(replays))[:n_test]
    test = np.isin(groups, test_episodes)
    played_by_policy = memory is None
    if memory is not None and [len(m) for m in memory] != [r.steps for r in replays]:
        raise ValueError("memory must hold one array per replay, as long as the replay")
    memory_rows = np.concatenate([r.hidden for r in replays] if memory is None else memory).astype(np.float64)
    obs = np.concatenate([r.observations.reshape(r.steps, -1) for r in replays]).astype(np.float64)
    variables = []
    for variable in first.hidden_variables:
        name, kind = variable.name, variable.kind
        y = np.concatenate([r.hidden_values[name] for r in replays])
        visible = np.concatenate([r.hidden_visible[name] for r in replays])
        lag = np.concatenate([r.steps_since_visible(name) for r in replays])
        args = (y, groups, test, lag, ~visible, seed)
        state = _probe_score(kind, memory_rows, *args)
        baseline = _probe_score(kind, obs, *args) if obs.shape[1] <= MAX_BASELINE_FEATURES else None
        if kind == "continuous":
            chance = 0.0
        else:
            _, counts = np.unique(y[test], return_counts=True)
            chance = float(counts.max() / counts.sum())
        variables.append(
            VariableProbe(
                variable=variable,
                metric="r2" if kind == "continuous" else "accuracy",
                binned_by="steps_since_visible" if visible.any() else "steps_since_start",
                chance=chance,
                state=state,
                observation=baseline,
            )
        )
    return ProbeReport(
        env_id=first.env_id,
        hidden_kind=first.hidden_kind if memory_kind is None else memory_kind,
        hidden_size=int(memory_rows.shape[1]),
        played_by_policy=played_by_policy,
        seed=seed,
        train_episodes=len(replays) - n_test,
        test_episodes=n_test,
        train_steps=int((~test).sum()),
        test_steps=int(test.sum()),
        mean_return=float(np.mean([r.episode_return for r in replays])),
        variables=tuple(variables),
    )


def probe_policy(
    policy: ActorCritic,
    env_id: str,
    *,
    episodes: int = 64,
    seed: int = 0,
    options: EnvOptions | None = None,
    deterministic: bool = False,
    max_steps: int = 1_000,
    test_fraction: float = 0.25,
    behaviour: ActorCritic | None = None,
    device: torch.device | str = "cpu",
) -> ProbeReport:
    """Record `episodes` episodes of `policy` on `env_id` and probe its memory (see the module doc).

    With `behaviour`, that policy plays the episodes and `policy` is only fed their
    observations: policies probed on one behaviour's episodes are compared on the same
    states (each policy's own episodes can differ a lot: a policy that falls over in 20
    steps is probed on early, easy states). Raises ValueError for an env that hides
    nothing (declares no hidden variable).
    """
    envs = make_vec_env(env_id, 1, seed, options)
    try:
        if not hidden_variables(envs):
            raise ValueError(f"{env_id} hides nothing to probe")
    finally:
        envs.close()
    replays = record_episodes(
        policy if behaviour is None else behaviour,
        env_id,
        episodes,
        seed=seed,
        options=options,
        deterministic=deterministic,
        max_steps=max_steps,
        device=device,
    )
    memory = None if behaviour is None else memory_on(policy, replays, device)
    return probe_replays(
        replays, seed=seed, test_fraction=test_fraction, memory=memory, memory_kind=hidden_kind(policy)
    )


def probe_export(path: str | Path, **kwargs: Any) -> ProbeReport:
    """`probe_policy` for an exported policy, on the env (and options) it trained on."""
    policy, env_id, options = load_export(path)
    return probe_policy(policy, env_id, options=options, **kwargs)
