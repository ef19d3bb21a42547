"""rlcore's Adam: torch.optim.Adam's steps and state_dict, without importing torch._dynamo."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from rlcore import adam
from rlcore.adam import Adam
from tests.conftest import ROOT


@pytest.fixture(autouse=True, params=["fused", "kernels"])
def _implementation(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test on torch's fused kernel and on the seven-kernel fallback."""
    if request.param == "kernels":
        monkeypatch.setattr(adam, "_FUSED_ADAM", None)
    else:
        assert adam._FUSED_ADAM is not None, "torch 2.13.0 has torch._fused_adam_"


def _grad(step: int, size: int) -> torch.Tensor:
    return torch.randn(size, generator=torch.Generator().manual_seed(step))


def _steps(optimizer: Adam | torch.optim.Adam, param: torch.Tensor, steps: range, lr: float) -> None:
    for step in steps:
        optimizer.param_groups[0]["lr"] = lr * (1 - step / 10)  # as Run.anneal sets it
        param.grad = _grad(step, param.numel())
        optimizer.step()


def test_steps_match_torch_adam() -> None:
    ours, reference = torch.nn.Parameter(torch.ones(1000)), torch.nn.Parameter(torch.ones(1000))
    _steps(Adam(ours, lr=0.01, eps=1e-5), ours, range(8), 0.01)
    _steps(torch.optim.Adam([reference], lr=0.01, eps=1e-5), reference, range(8), 0.01)
    assert not torch.equal(ours, torch.ones(1000))
    torch.testing.assert_close(ours, reference)


def test_state_dicts_load_both_ways() -> None:
    """A checkpoint of either optimiser resumes in the other with the same steps."""
    param = torch.nn.Parameter(torch.ones(50))
    reference = torch.optim.Adam([param], lr=0.01, eps=1e-5)
    _steps(reference, param, range(3), 0.01)
    ours_param = torch.nn.Parameter(param.detach().clone())
    ours = Adam(ours_param, lr=0.5, eps=1e-5)
    ours.load_state_dict(reference.state_dict())
    _steps(reference, param, range(3, 6), 0.01)
    _steps(ours, ours_param, range(3, 6), 0.01)
    torch.testing.assert_close(ours_param, param)

    back = torch.optim.Adam([param], lr=0.5, eps=1e-5)
    back.load_state_dict(ours.state_dict())
    _steps(back, param, range(6, 8), 0.01)
    _steps(ours, ours_param, range(6, 8), 0.01)
    torch.testing.assert_close(ours_param, param)
    assert back.state_dict()["state"][0]["step"] == torch.tensor(8.0)


def test_a_state_saved_before_the_first_step_starts_afresh() -> None:
    param = torch.nn.Parameter(torch.ones(10))
    used = Adam(param, lr=0.01)
    _steps(used, param, range(2), 0.01)
    used.load_state_dict(Adam(torch.nn.Parameter(torch.ones(10)), lr=0.02).state_dict())
    assert used.steps == 0 and used.param_groups[0]["lr"] == 0.02
    assert not used.exp_avg.any() and not used.exp_avg_sq.any()


def test_training_never_imports_dynamo() -> None:
    # torch.optim would: 1.8 s of CPU at the start of every worker and `rlserve train`.
    script = (
        "import sys, tempfile\n"
        "from pathlib import Path\n"
        "from rlcore.spec import TrainSpec\n"
        "from rlcore.trainer import train\n"
        "spec = TrainSpec(algo='ppo', model='gru', env_id='CartPole-v1', total_steps=256, num_envs=8,\n"
        "                 rollout_length=32, checkpoint_interval=256)\n"
        "train(spec, Path(tempfile.mkdtemp()))\n"
        "print(sorted(m for m in sys.modules if m.startswith('torch._dynamo')))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "[]", done.stdout
