"""The hand-written GRU/LSTM chunk functions against PyTorch's own cells, in float64.

Every test runs both implementations of the time loops: the compiled one
(`rlcore/compiled.py`) and the Python fallback.
"""

from __future__ import annotations

import pytest
import torch

from rlcore import compiled
from rlcore.models.recurrence import gru_sequence, lstm_sequence

STEPS, BATCH, FEATURES, HIDDEN = 20, 5, 3, 7


@pytest.fixture(autouse=True, params=["compiled", "python"])
def loops(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Which time loops run: the compiled ones, or the Python fallback (as without a compiler)."""
    if request.param == "python":
        monkeypatch.setattr(compiled, "for_tensor", lambda x: None)
    return request.param


def _inputs(
    kind: str, steps: int
) -> tuple[torch.Tensor, list[torch.Tensor], torch.Tensor, list[torch.Tensor]]:
    """x, initial state(s), episode starts (several, at different steps per row), weights."""
    gen = torch.Generator().manual_seed(0)
    rnn = {"gru": torch.nn.GRU, "lstm": torch.nn.LSTM}[kind](FEATURES, HIDDEN).double()
    x = torch.randn(steps, BATCH, FEATURES, generator=gen, dtype=torch.float64, requires_grad=True)
    states = [
        torch.randn(BATCH, HIDDEN, generator=gen, dtype=torch.float64, requires_grad=True)
        for _ in range(2 if kind == "lstm" else 1)
    ]
    starts = torch.rand(steps, BATCH, generator=gen) < 0.15
    starts[0, 0] = True
    return x, states, starts, list(rnn.parameters())


def _cell_loop(kind: str, x: torch.Tensor, states: list[torch.Tensor], starts: torch.Tensor, weights):
    """The reference: PyTorch's cell one step at a time, zeroing the state at starts."""
    keep = (~starts).to(x.dtype).unsqueeze(-1)
    h, c = states[0], states[-1]
    outputs = []
    for t in range(x.shape[0]):
        if kind == "lstm":
            h, c = torch.lstm_cell(x[t], (h * keep[t], c * keep[t]), *weights)
        else:
            h = torch.gru_cell(x[t], h * keep[t], *weights)
        outputs.append(h)
    return (torch.stack(outputs), h, c) if kind == "lstm" else (torch.stack(outputs), h)


def _sequence(kind: str, x: torch.Tensor, states: list[torch.Tensor], starts: torch.Tensor, weights):
    fn = lstm_sequence if kind == "lstm" else gru_sequence
    return fn(x, *states, starts, *weights)


# 20 steps runs the long-sequence layout (a contiguous copy of W_hh^T), 3 the short one.
@pytest.mark.parametrize("steps", [STEPS, 3])
@pytest.mark.parametrize("kind", ["gru", "lstm"])
def test_outputs_and_gradients_equal_the_cell_loop(kind: str, steps: int) -> None:
    x, states, starts, weights = _inputs(kind, steps)
    expected = _cell_loop(kind, x, states, starts, weights)
    got = _sequence(kind, x, states, starts, weights)
    for e, g in zip(expected, got, strict=True):
        torch.testing.assert_close(g, e, rtol=0, atol=1e-12)

    # Weight every output (and the final states) differently so each gradient path counts.
    gen = torch.Generator().manual_seed(1)
    probes = [torch.randn(e.shape, generator=gen, dtype=torch.float64) for e in expected]
    leaves = [x, *states, *weights]

    def probed(outputs: tuple[torch.Tensor, ...]) -> torch.Tensor:
        return sum((o * p).sum() for o, p in zip(outputs, probes, strict=True))

    grads_expected = torch.autograd.grad(probed(expected), leaves)
    grads_got = torch.autograd.grad(probed(got), leaves)
    for e, g in zip(grads_expected, grads_got, strict=True):
        torch.testing.assert_close(g, e, rtol=0, atol=1e-11)


@pytest.mark.parametrize("kind", ["gru", "lstm"])
def test_gradient_stops_at_an_episode_start(kind: str) -> None:
    x, states, _, weights = _inputs(kind, STEPS)
    starts = torch.zeros(STEPS, BATCH, dtype=torch.bool)
    starts[10, :] = True
    out = _sequence(kind, x, states, starts, weights)[0]
    grad_x = torch.autograd.grad(out[-1].sum(), x)[0]
    assert grad_x[:10].abs().max() == 0
    assert grad_x[10:].abs().min(dim=-1).values.min() > 0


@pytest.mark.parametrize("steps", [STEPS, 1])  # 1: the acting step
@pytest.mark.parametrize("kind", ["gru", "lstm"])
def test_no_grad_path_gives_the_same_numbers(kind: str, steps: int) -> None:
    x, states, starts, weights = _inputs(kind, steps)
    with_grad = _sequence(kind, x, states, starts, weights)
    with torch.no_grad():
        without = _sequence(kind, x, states, starts, weights)
    for a, b in zip(with_grad, without, strict=True):
        torch.testing.assert_close(a.detach(), b, rtol=0, atol=1e-12)


@pytest.mark.parametrize("kind", ["gru", "lstm"])
def test_float32_matches_the_float64_cells(kind: str) -> None:
    """In float32 the compiled loops use their own exp: close to the exact cells all the same,
    even with inputs that saturate every gate. The tolerances are 10x the largest errors
    seen: MKL rounds a float32 product differently with the buffers' alignment, so the
    errors move from one process to the next (up to 2e-6 in the outputs and 1e-5 + 1e-4 *
    |gradient| in the gradients, either implementation)."""
    x, states, starts, weights = _inputs(kind, STEPS)
    with torch.no_grad():
        x[:, 0] *= 60  # one row far into the flat tails of sigmoid and tanh
    expected = _cell_loop(kind, x, states, starts, weights)
    x32, states32, weights32 = (
        [t.detach().float().requires_grad_() for t in group] for group in ([x], states, weights)
    )
    got = _sequence(kind, x32[0], states32, starts, weights32)
    for e, g in zip(expected, got, strict=True):
        torch.testing.assert_close(g.double(), e, rtol=0, atol=1e-5)
    leaves64, leaves32 = [x, *states, *weights], [*x32, *states32, *weights32]
    grads_expected = torch.autograd.grad(sum(o.sum() for o in expected), leaves64)
    grads_got = torch.autograd.grad(sum(o.sum() for o in got), leaves32)
    for e, g in zip(grads_expected, grads_got, strict=True):
        torch.testing.assert_close(g.double(), e, rtol=1e-3, atol=1e-4)
