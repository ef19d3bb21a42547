"""Building the compiled kernels, and training without them where they cannot be built."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from rlcore import compiled


def test_the_compiled_loops_are_built_here() -> None:
    """This machine has a C++ compiler, so training here runs the compiled loops and loss."""
    assert compiled.loops() is not None and compiled.losses() is not None


def test_without_a_compiler_training_falls_back_to_the_python_loops(tmp_path: Path) -> None:
    # A fresh build folder, so that nothing cached is loaded, and a compiler that always fails.
    env = {**os.environ, "TORCH_EXTENSIONS_DIR": str(tmp_path), "CXX": "/bin/false"}
    script = textwrap.dedent(
        """
        import torch
        from rlcore import compiled
        from rlcore.algos import fused_ppo_loss
        from rlcore.distributions import Categorical
        from rlcore.models.recurrence import gru_sequence

        assert compiled.loops() is None
        assert not fused_ppo_loss.applies(Categorical(2), torch.zeros(3, 2))  # PPO: the Python loss
        weights = [torch.randn(s, requires_grad=True) for s in ((12, 3), (12, 4), (12,), (12,))]
        starts = torch.zeros(5, 2, dtype=torch.bool)
        out, _ = gru_sequence(torch.randn(5, 2, 3), torch.zeros(2, 4), starts, *weights)
        out.sum().backward()
        assert all(w.grad is not None for w in weights)
        """
    )
    run = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "the compiled kernels could not be built" in run.stderr
