"""rlcore.allocator: a training process reuses the tensor memory it frees."""

from __future__ import annotations

import subprocess
import sys

import pytest

# In a fresh process, as a worker's first job: the minor page faults of a short PPO run
# with a 256-wide GRU (bench/train_speed.py's setting (a)) over its updates 6 to 20, after
# the first updates have allocated what every later one reuses. "default" is the control
# arm: Run's call is replaced by a no-op, so glibc keeps its own policy. (glibc adapts its
# thresholds to what a process frees, so its count moves from run to run.)
FAULTS = """
import resource, sys, tempfile
from pathlib import Path
import rlcore.run
from rlcore.algos import ALGORITHMS
from rlcore.spec import TrainSpec

class FaultsPerUpdate:
    def __init__(self): self.seen = []
    def log(self, step, metrics): self.seen.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt)
    def flush(self): pass

if sys.argv[1] == "default":
    rlcore.run.keep_freed_memory = lambda: False
spec = TrainSpec.model_validate({"algo": "ppo", "model": "gru", "env_id": "CartPole-v1",
    "device": "cpu", "checkpoint_interval": 0, "encoder": "none", "hidden_size": 256,
    "num_envs": 8, "rollout_length": 32, "minibatches": 1, "epochs": 20, "total_steps": 5120})
with tempfile.TemporaryDirectory() as folder:
    faults = FaultsPerUpdate()
    run = rlcore.run.Run(spec, Path(folder) / "run", faults)
    ALGORITHMS["ppo"](run); run.close()
    print(faults.seen[-1] - faults.seen[4])
"""


def _faults(mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", FAULTS, mode], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt; elsewhere it does nothing")
def test_training_reuses_freed_tensors_instead_of_faulting_their_pages_in_again() -> None:
    kept, default = _faults("keep"), _faults("default")
    # 15 updates of 20 epochs: with glibc's default the activations' pages come back from
    # the kernel epoch after epoch (37k-57k faults in four runs here, against 300-800).
    assert default > 10_000, default
    assert kept < default / 10, (kept, default)
