"""Run lineage: extend a run past its end, or fork a new run from another run's checkpoint.

- Extend: the same run folder and spec with a larger `total_steps`. `Run` resumes a
  checkpoint whose spec differs from its own only there (`same_run`), so training goes on
  from the checkpoint, every random stream where it was, and reports the steps after it.
  The schedule that `anneal_lr` follows (the learning rate, and PPO's clip range) is a
  function of the step and the total, `learning_rate * (1 - step / total_steps)`: after an
  extension it runs towards zero at the new total. A run that had annealed to about zero
  at its old end starts again at `learning_rate * (1 - old_total / new_total)`, the rate a
  run asked for the new total from the start would have at that step.
- Fork: a new run folder whose checkpoint is the parent's with a changed spec
  (`fork_checkpoint`). It keeps everything the parent's state is made of: the weights and
  observation statistics, Adam's moments (they do not depend on the learning rate; a new
  one applies from the first update, on the schedule above), the envs mid-episode, the
  collector, every RNG stream and the clock. So a fork may change only the fields in
  `FORKABLE`; the others are refused with the reason in `KEPT`. The fork's mean and best
  returns (and its best policy) are judged on its own episodes only.
"""

from __future__ import annotations

from pathlib import Path

from rlcore.spec import ENV_OPTIONS, TrainSpec

# Training choices that the parent's state does not depend on.
FORKABLE = frozenset(
    {
        "total_steps",
        "learning_rate",
        "anneal_lr",
        "gamma",
        "gae_lambda",
        "ent_coef",
        "vf_coef",
        "clip_range",
        "epochs",
        "target_kl",
        "minibatches",
        "rollout_length",
        "bptt_length",
        "max_grad_norm",
        "normalize_advantages",
        "eval_interval",
        "eval_episodes",
        "eval_deterministic",
        "checkpoint_interval",
        "torch_threads",
        "device",
        "bf16",
    }
)
_ARCHITECTURE = "changes the policy's architecture, which the parent's weights are made for"
_ENVIRONMENTS = "changes the environments, which the checkpoint holds mid-episode"
_REWARDS = "changes the rewards, which the parent's critic has learned to predict"
# Why a fork keeps each of the other fields (every TrainSpec field is in one of the two).
KEPT: dict[str, str] = {
    "algo": "a fork trains with its parent's algorithm",
    "model": _ARCHITECTURE,
    "encoder": _ARCHITECTURE,
    "hidden_size": _ARCHITECTURE,
    "num_layers": _ARCHITECTURE,
    "window_length": _ARCHITECTURE,
    "normalize_obs": "changes the policy: its observation statistics are part of the weights",
    "env_id": _ENVIRONMENTS,
    "num_envs": _ENVIRONMENTS,
    "seed": "the seed made the parent's environments, which a fork continues",
    **dict.fromkeys(ENV_OPTIONS, _ENVIRONMENTS),
    "clip_rewards": _REWARDS,
    "normalize_reward": _REWARDS,
}


class LineageError(ValueError):
    """A spec change that an extension or a fork cannot make; `field` names the spec field."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def same_run(saved: TrainSpec, spec: TrainSpec) -> bool:
    """True when `spec` continues the run of `saved`: equal, but for a larger (or any) total_steps."""
    return saved.model_copy(update={"total_steps": spec.total_steps}) == spec


def kept(name: str) -> LineageError:
    """The error for a change of `name`, a field that a fork keeps."""
    reason = KEPT.get(name, "a fork keeps it")
    return LineageError(name, f"{reason}; a fork may change only {', '.join(sorted(FORKABLE))}")


def fork_errors(parent: TrainSpec, child: TrainSpec, step: int) -> list[LineageError]:
    """What makes `child` no fork of `parent`'s checkpoint at `step`; empty when it is one."""
    errors = [
        kept(name)
        for name in TrainSpec.model_fields
        if name not in FORKABLE and getattr(child, name) != getattr(parent, name)
    ]
    if child.total_steps <= step:
        errors.append(
            LineageError("total_steps", f"must be larger than {step}, the step the fork starts from")
        )
    return errors


def fork_checkpoint(parent_dir: Path, child_dir: Path, spec: TrainSpec) -> int | None:
    """Write `child_dir`'s checkpoint: the parent's last one, continued by `spec`; its step.

    None when `parent_dir` holds no checkpoint. Raises LineageError when `spec` changes
    a field that a fork keeps, or does not reach past the checkpoint.
    """
    # torch, late: the API imports this module for its field lists without loading torch.
    from rlcore.checkpoint import CHECKPOINTS, load_checkpoint, save_checkpoint

    saved = load_checkpoint(parent_dir / CHECKPOINTS)
    if saved is None:
        return None
    step = int(saved["collector"]["global_step"])
    errors = fork_errors(TrainSpec.from_saved(saved["spec"], check_memory=False), spec, step)
    if errors:
        raise errors[0]
    saved.update(spec=spec.model_dump_json(), recent_returns=[], best_return=None, best_weights=None)
    save_checkpoint(child_dir / CHECKPOINTS, saved)
    return step
