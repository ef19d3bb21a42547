"""A training run: the parts every algorithm shares (set-up, metrics, checkpoints, exact resume).

Each algorithm in `rlcore/algos/` is one loop over `Run`; this module holds what is the
same for all of them, so an algorithm file holds only its algorithm.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rlcore.adam import Adam
from rlcore.allocator import keep_freed_memory
from rlcore.checkpoint import CHECKPOINTS, load_checkpoint, save_checkpoint
from rlcore.device import resolve_device
from rlcore.distributions import action_spec_of
from rlcore.envs import make_vec_env
from rlcore.episodes import EpisodeCollector
from rlcore.evaluate import eval_seed, run_episodes, torch_policy_actor
from rlcore.export import export_policy
from rlcore.flat import FlatParameters
from rlcore.lineage import same_run
from rlcore.metrics import MetricsSink
from rlcore.models import build_policy, spec_policy_config
from rlcore.rollout import Episode, RolloutCollector
from rlcore.spec import Algorithm, TrainSpec

__all__ = ["CHECKPOINTS", "Run", "SpecMismatchError", "policy_metadata"]


class SpecMismatchError(ValueError):
    """A run folder's checkpoint was made by a different spec."""


class Run:
    """A training run: envs, policy, optimiser and collector, plus reporting and checkpoints."""

    def __init__(
        self,
        spec: TrainSpec,
        out_dir: Path,
        sink: MetricsSink | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> None:
        self.spec = spec
        self.out_dir = out_dir
        self.sink = sink
        self.should_stop = should_stop or (lambda: False)
        self.device = resolve_device(spec.device)
        torch.set_num_threads(spec.torch_threads)
        keep_freed_memory()  # every minibatch reallocates its activations: reuse, not re-fault
        torch.manual_seed(spec.seed)

        self.envs = make_vec_env(spec.env_id, spec.num_envs, spec.seed, spec.env_options())
        # Discrete, MultiDiscrete or Box actions; Box ones with the default "clip" squash.
        self.policy_config = spec_policy_config(
            spec, self.envs.single_observation_space.shape, action_spec_of(self.envs.single_action_space)
        )
        self.policy = build_policy(self.policy_config).to(self.device)
        # One flat parameter: a step is a few kernels whatever the number of tensors, as
        # small recurrent updates on a CPU are bound by per-operator overhead.
        self.flat_params = FlatParameters(self.policy)
        self.optimizer = Adam(self.flat_params.flat, lr=spec.learning_rate, eps=1e-5)
        # REINFORCE learns from whole episodes; the others from fixed-length rollouts.
        collector = EpisodeCollector if spec.algo == Algorithm.reinforce else RolloutCollector
        self.collector = collector(
            self.envs,
            self.policy,
            self.device,
            spec.seed,
            clip_rewards=spec.clip_rewards,
            bf16=spec.bf16,
            normalize_reward=spec.normalize_reward,
            gamma=spec.gamma,
        )
        self.recent_returns: deque[float] = deque(maxlen=100)
        self.best_return: float | None = None
        self.best_weights: dict[str, torch.Tensor] | None = None
        self.elapsed_before = 0.0
        self.started = time.perf_counter()
        self.update_started = self.started
        self.update_started_step = 0
        self.last_checkpoint_step = 0
        self.last_eval_step = 0
        # On the policy's device: sampling there draws from that device's generator.
        self.eval_generator = torch.Generator(self.device).manual_seed(spec.seed + 1)
        self._resume()

    # -- the loop's view ------------------------------------------------------------

    @property
    def global_step(self) -> int:
        return self.collector.global_step

    def finished(self) -> bool:
        """True once the step budget is spent or a stop was asked for."""
        return self.global_step >= self.spec.total_steps or self.should_stop()

    def anneal(self) -> float:
        """Set this update's learning rate; returns the fraction of training left (1 -> 0)."""
        remaining = 1.0 - self.global_step / self.spec.total_steps
        fraction = max(remaining, 0.0) if self.spec.anneal_lr else 1.0
        for group in self.optimizer.param_groups:
            group["lr"] = self.spec.learning_rate * fraction
        return fraction

    def optimize(self, loss: torch.Tensor) -> None:
        """One gradient step with the spec's gradient-norm clip."""
        self.flat_params.zero_grad()
        loss.backward()
        self.flat_params.clip_grad_norm_(self.spec.max_grad_norm)
        self.optimizer.step()

    def end_update(self, episodes: list[Episode], losses: dict[str, float]) -> None:
        """Report one point of metrics (with the episodes that ended since the last one), then
        evaluate and checkpoint when due."""
        # The observation statistics move with the weights, after the update: everything
        # from here on (evaluation, best policy, checkpoint, next rollout) sees both.
        self.collector.commit_statistics()
        now = time.perf_counter()
        steps = self.global_step - self.update_started_step
        metrics: dict[str, float] = {
            "perf/sps": steps / max(now - self.update_started, 1e-9),
            "perf/wall_time": self.wall_time,
            "charts/learning_rate": self.optimizer.param_groups[0]["lr"],
            **losses,
        }
        self.update_started, self.update_started_step = now, self.global_step
        if episodes:
            returns = [e.ret for e in episodes]
            self.recent_returns.extend(returns)
            metrics["charts/episodic_return"] = float(np.mean(returns))
            metrics["charts/episodic_length"] = float(np.mean([e.length for e in episodes]))
            metrics["charts/episodes"] = float(len(returns))
            self._track_best()
        if self._evaluation_due():
            self.last_eval_step = self.global_step
            returns = self.evaluate(self.spec.eval_episodes)
            metrics["eval/episodic_return"] = float(np.mean(returns))
            metrics["eval/episodic_return_std"] = float(np.std(returns))
            self.update_started = time.perf_counter()  # the next update's speed leaves it out
        if self.sink is not None:
            self.sink.log(self.global_step, metrics)
        interval = self.spec.checkpoint_interval
        if interval and self.global_step - self.last_checkpoint_step >= interval:
            self.checkpoint()

    # -- evaluation, checkpoints, results -------------------------------------------

    @property
    def wall_time(self) -> float:
        """Seconds spent training, across resumes."""
        return self.elapsed_before + time.perf_counter() - self.started

    @property
    def mean_return(self) -> float | None:
        return float(np.mean(self.recent_returns)) if self.recent_returns else None

    def _evaluation_due(self) -> bool:
        """At the end, and each time the step passes a multiple of `eval_interval`.

        Multiples, not "interval steps since the last one", so a run extended past its end
        evaluates at the steps a run asked for the longer budget at the start would (plus
        its old end).
        """
        spec = self.spec
        if not spec.eval_episodes or self.last_eval_step == self.global_step:
            return False
        if self.global_step >= spec.total_steps:
            return True
        interval = spec.eval_interval
        return bool(interval) and self.global_step // interval > self.last_eval_step // interval

    def evaluate(self, episodes: int) -> list[float]:
        """Returns of the current policy over `episodes` episodes on the evaluation envs.

        Each evaluation starts the same envs from `eval_seed(seed)`, apart from training's
        seeds; sampled actions draw from the run's own evaluation generator, so neither
        touches a random stream that training draws from.
        """
        spec = self.spec
        act = torch_policy_actor(
            self.policy, self.device, self.eval_generator, deterministic=spec.eval_deterministic
        )
        return run_episodes(act, spec.env_id, episodes, eval_seed(spec.seed), spec.env_options())

    def _track_best(self) -> None:
        # Judged on the last 100 episodes, so one lucky episode does not count as best.
        mean = self.mean_return
        if mean is not None and (self.best_return is None or mean > self.best_return):
            self.best_return = mean
            self.best_weights = copy.deepcopy(self.policy.state_dict())

    def checkpoint(self) -> Path:
        """Save everything needed to continue this run exactly where it is."""
        if self.sink is not None:
            self.sink.flush()
        self.last_checkpoint_step = self.global_step
        return save_checkpoint(
            self.out_dir / CHECKPOINTS,
            {
                "spec": self.spec.model_dump_json(),
                "policy": self.policy.state_dict(),
                "policy_config": self.policy_config,
                "optimizer": self.optimizer.state_dict(),
                "collector": self.collector.state_dict(),
                **self._rng_states(),
                "recent_returns": list(self.recent_returns),
                "best_return": self.best_return,
                "best_weights": self.best_weights,
                "wall_time": self.wall_time,
                "last_eval_step": self.last_eval_step,
            },
        )

    def _resume(self) -> None:
        saved = load_checkpoint(self.out_dir / CHECKPOINTS)
        if saved is None:
            return
        # A larger total_steps extends the run (rlcore.lineage); anything else is another run.
        if not same_run(TrainSpec.from_saved(saved["spec"]), self.spec):
            raise SpecMismatchError(
                f"{self.out_dir} holds a checkpoint of a different spec; use a new folder"
            )
        self.policy.load_state_dict(saved["policy"])
        self.optimizer.load_state_dict(self.flat_params.flatten_optimizer_state(saved["optimizer"]))
        self.collector.load_state_dict(saved["collector"])
        self._restore_rng_states(saved)
        self.recent_returns.extend(saved["recent_returns"])
        self.best_return = saved["best_return"]
        self.best_weights = saved["best_weights"]
        self.elapsed_before = saved["wall_time"]
        self.last_checkpoint_step = self.update_started_step = self.global_step
        self.last_eval_step = saved["last_eval_step"]

    def _rng_states(self) -> dict[str, torch.Tensor | None]:
        """Every random stream training draws from, for an exact resume.

        The global CPU generator orders the minibatches (and samples actions on the CPU);
        on a GPU, actions are sampled from the CUDA generator of the policy's device,
        which `torch.manual_seed` in __init__ would otherwise reset on resume. Nothing
        draws from numpy's or Python's global RNG; the envs' generators are in the
        collector's state.
        """
        cuda = torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None
        return {
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": cuda,
            "eval_rng": self.eval_generator.get_state(),
        }

    def _restore_rng_states(self, saved: dict[str, Any]) -> None:
        torch.set_rng_state(saved["torch_rng"])
        if saved.get("cuda_rng") is not None and self.device.type == "cuda":
            torch.cuda.set_rng_state(saved["cuda_rng"], self.device)
        eval_rng = saved["eval_rng"]
        # A checkpoint from before the eval generator lived on the policy's device holds
        # a CPU generator's state, which a CUDA generator cannot take: it starts afresh.
        if eval_rng.numel() == self.eval_generator.get_state().numel():
            self.eval_generator.set_state(eval_rng)

    def export(self) -> None:
        """Write the final policy to the run folder and the best one to `best/`."""
        metadata = policy_metadata(self.spec, self.global_step, mean_return=self.mean_return)
        export_policy(self.policy, self.policy_config, self.out_dir, metadata)
        if self.best_weights is not None:
            best = build_policy(self.policy_config)
            best.load_state_dict(self.best_weights)
            export_policy(
                best,
                self.policy_config,
                self.out_dir / "best",
                {**metadata, "mean_return": self.best_return},
            )

    def close(self) -> None:
        self.envs.close()


def policy_metadata(spec: TrainSpec, step: int, **extra: Any) -> dict[str, Any]:
    """What an exported policy of `spec` says about itself, next to its weights."""
    return {
        "env_id": spec.env_id,
        # What the env must be built with for the policy to see what it trained on.
        "env_options": dataclasses.asdict(spec.env_options()),
        "algo": spec.algo.value,
        "step": step,
        "spec": spec.model_dump(mode="json"),
        **extra,
    }
