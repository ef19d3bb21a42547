"""A running (or stopped) job's policy, exported on demand from its last training checkpoint.

The trainer writes `policy.*` only when a run ends; while it runs, the checkpoint
(`checkpoints/last.pt`, written atomically) holds the policy's state_dict and the spec,
which is all `rlcore.export.export_policy` needs. The export is kept per checkpoint step
(`checkpoint_policy/step-N/` in the job's folder), so repeated downloads export once.
"""

from __future__ import annotations

import shutil
import threading
from pathlib import Path
from typing import Any

FOLDER = "checkpoint_policy"
_lock = threading.Lock()  # one export at a time in this process: each takes a second or so


def export_from_checkpoint(job_dir: Path) -> tuple[Path, int] | None:
    """Folder with policy.json/.safetensors/.onnx from the job's last checkpoint, and its step.

    None when the job has no checkpoint yet.
    """
    from rlcore.checkpoint import load_checkpoint
    from rlcore.export import export_policy
    from rlcore.models import build_policy
    from rlcore.run import CHECKPOINTS, policy_metadata
    from rlcore.spec import TrainSpec

    with _lock:
        saved = load_checkpoint(job_dir / CHECKPOINTS)
        if saved is None:
            return None
        step = int(saved["collector"]["global_step"])
        out = job_dir / FOLDER / f"step-{step}"
        if (out / "policy.json").is_file():
            return out, step
        spec = TrainSpec.from_saved(saved["spec"], check_memory=False)
        config = saved.get("policy_config") or _policy_config(spec)
        policy = build_policy(config)
        policy.load_state_dict(saved["policy"])
        metadata = policy_metadata(spec, step, from_checkpoint=True)
        tmp = job_dir / FOLDER / "tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        export_policy(policy, config, tmp, metadata)
        tmp.rename(out)
        for older in (job_dir / FOLDER).iterdir():
            if older != out:
                shutil.rmtree(older, ignore_errors=True)
        return out, step


def _policy_config(spec: Any) -> dict[str, Any]:
    """The policy config of a checkpoint from before checkpoints held it: from the env's spaces."""
    from rlcore.distributions import action_spec_of
    from rlcore.envs import make_vec_env
    from rlcore.models import spec_policy_config

    envs = make_vec_env(spec.env_id, 1, spec.seed, spec.env_options())
    try:
        actions = action_spec_of(envs.single_action_space)
        return spec_policy_config(spec, envs.single_observation_space.shape, actions)
    finally:
        envs.close()
