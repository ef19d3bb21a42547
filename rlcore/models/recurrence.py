"""GRU and LSTM layers over a whole chunk, with resets at episode starts, fast on CPU.

On a CPU the recurrence runs one time step after another whatever we do; what makes
recurrent PPO slow there is the autograd graph of a per-step cell loop (tens of nodes
per step) and the weight gradients accumulated step by step. These functions keep the
time loop but run it with a hand-written backward:

- the input projection x @ W_ih and the weight gradients are one matmul over all steps;
- each step is one (B, H) @ (H, gates) matmul and a few in-place elementwise ops;
- the gate derivatives that do not depend on the incoming gradient are computed for
  all steps at once before the backward loop.

A step t with `starts[t, b]` zeroes row b's state before the step (forward) and the
gradient flowing into the previous state (backward), so episodes never leak into each
other. Equations and gate order are PyTorch's own (`torch.nn.GRU`, `torch.nn.LSTM`);
the tests compare both directions with a `gru_cell`/`lstm_cell` loop in float64.

On CPU the time loops themselves run compiled (`rlcore/compiled.py`, `rlcore/csrc/recurrence.cpp`):
from Python each step costs some ten operator calls of a few microseconds each, as much
as its matmul at the sizes recurrent PPO trains. The Python loops below are the fallback
where no compiler is available (and for tensors off the CPU, which `cores.py` sends
through cuDNN instead).
"""

from __future__ import annotations

import torch
from torch.autograd.function import FunctionCtx, once_differentiable

from rlcore import compiled


def gru_sequence(
    x: torch.Tensor,
    h0: torch.Tensor,
    starts: torch.Tensor,
    weight_ih: torch.Tensor,
    weight_hh: torch.Tensor,
    bias_ih: torch.Tensor,
    bias_hh: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One GRU layer over x (T, B, F) from h0 (B, H): outputs (T, B, H) and the last h."""
    inputs = (x, h0, starts, weight_ih, weight_hh, bias_ih, bias_hh)
    if _needs_grad(inputs):
        return _GRUSequence.apply(*inputs)
    if x.shape[0] == 1:  # one acting step: PyTorch's cell, without the chunk set-up
        h = torch.gru_cell(x[0], h0.masked_fill(starts[0].unsqueeze(-1), 0.0), *inputs[3:])
        return h.unsqueeze(0), h
    out = _GRUSequence.run(*inputs)[0]
    return out, out[-1]


def lstm_sequence(
    x: torch.Tensor,
    h0: torch.Tensor,
    c0: torch.Tensor,
    starts: torch.Tensor,
    weight_ih: torch.Tensor,
    weight_hh: torch.Tensor,
    bias_ih: torch.Tensor,
    bias_hh: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One LSTM layer over x (T, B, F) from (h0, c0): outputs (T, B, H), last h and c."""
    inputs = (x, h0, c0, starts, weight_ih, weight_hh, bias_ih, bias_hh)
    if _needs_grad(inputs):
        return _LSTMSequence.apply(*inputs)
    if x.shape[0] == 1:  # one acting step: PyTorch's cell, without the chunk set-up
        new = starts[0].unsqueeze(-1)
        h, c = torch.lstm_cell(x[0], (h0.masked_fill(new, 0.0), c0.masked_fill(new, 0.0)), *inputs[4:])
        return h.unsqueeze(0), h, c
    out, _, _, _, c_out, _ = _LSTMSequence.run(*inputs)
    return out, out[-1], c_out[-1]


def _needs_grad(inputs: tuple[torch.Tensor, ...]) -> bool:
    # Acting runs under no_grad one step at a time: skip autograd.Function's overhead.
    return torch.is_grad_enabled() and any(t.requires_grad for t in inputs)


def _resets(starts: torch.Tensor, dtype: torch.dtype) -> tuple[frozenset[int], torch.Tensor]:
    """The steps at which some row starts an episode, and the (T, B, 1) mask that is 0 on those rows."""
    return frozenset(torch.nonzero(starts.any(dim=1)).flatten().tolist()), (~starts).to(dtype).unsqueeze(-1)


def _prepare(
    x: torch.Tensor, starts: torch.Tensor, weight_ih: torch.Tensor, bias: torch.Tensor
) -> tuple[frozenset[int], torch.Tensor, torch.Tensor]:
    """What every chunk needs before its time loop: the steps at which some row starts an
    episode, the (T, B, 1) mask that is 0 on those rows, and x W_ih^T + bias for all steps."""
    steps, batch, _ = x.shape
    resets, keep = _resets(starts, x.dtype)
    projected = torch.addmm(bias, x.reshape(steps * batch, -1), weight_ih.t()).view(steps, batch, -1)
    return resets, keep, projected


def _gru_forward(
    x: torch.Tensor,
    h0: torch.Tensor,
    starts: torch.Tensor,
    weight_ih: torch.Tensor,
    weight_hh: torch.Tensor,
    bias_ih: torch.Tensor,
    bias_hh: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The outputs, the states each step starts from, the gates (r, z after the sigmoid, and
    gh_n = h_in W_hn^T + b_hn) and the candidate n, all (T, B, .)."""
    # r, z = sigmoid(gi_rz + gh_rz); n = tanh(gi_n + r * gh_n); h' = n + z * (h - n)
    # with gi = x W_ih^T + b_ih and gh = h W_hh^T + b_hh.
    steps, batch, _ = x.shape
    hidden = weight_hh.shape[1]
    # Each step adds h W_hh^T in place to `gates`, which starts as everything else that
    # the pre-activations of r and z sum, and as b_hn for n (gi_n stays apart: r scales
    # gh_n alone).
    bias = torch.cat([bias_ih[: 2 * hidden] + bias_hh[: 2 * hidden], bias_ih[2 * hidden :]])
    resets, keep, gates = _prepare(x, starts, weight_ih, bias)
    gi_n = gates[..., 2 * hidden :].clone()
    gates[..., 2 * hidden :] = bias_hh[2 * hidden :]
    n, out = x.new_empty(steps, batch, hidden), x.new_empty(steps, batch, hidden)
    # Per-step views made once: indexing inside the loop costs more than the math.
    gates_t, (rz_t, gh_n) = gates.unbind(0), _steps(gates, 2 * hidden, hidden)
    r, z, _ = _steps(gates, hidden, hidden, hidden)
    gi_n, n_t, out_t = gi_n.unbind(0), n.unbind(0), out.unbind(0)
    w_hh_t = _transposed(weight_hh, steps)
    h = h0
    for t in range(steps):
        if t in resets:
            h = h * keep[t]
        gates_t[t].addmm_(h, w_hh_t)
        rz_t[t].sigmoid_()
        torch.addcmul(gi_n[t], r[t], gh_n[t], out=n_t[t]).tanh_()
        h = torch.lerp(n_t[t], h, z[t], out=out_t[t])
    return out, _states_in(h0, out, keep), gates, n


def _states_in(first: torch.Tensor, outputs: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """The state each step starts from, after any reset: `first`, then each step's output."""
    states = torch.empty_like(outputs)
    torch.mul(first, keep[0], out=states[0])
    torch.mul(outputs[:-1], keep[1:], out=states[1:])
    return states


def _transposed(weight: torch.Tensor, steps: int) -> torch.Tensor:
    """W^T for h @ W^T. MKL multiplies (B, H) by a row-major (H, G) matrix about 1.6x
    faster than by the transposed view of W, so long sequences pay for one copy."""
    return weight.t().contiguous() if steps >= 16 else weight.t()


def _matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a @ b. MKL is up to 6x slower when b has a few columns (the gradients that involve
    an observation of a few floats read straight by the core), and fast at (b^T a^T)^T."""
    return (b.t() @ a.t()).t() if b.shape[1] < 16 else a @ b


def _steps(x: torch.Tensor, *sizes: int) -> list[tuple[torch.Tensor, ...]]:
    """Split x (T, B, sum(sizes)) along the last dim, each part unbound into T views."""
    return [part.unbind(0) for part in x.split(sizes, dim=-1)]


class _GRUSequence(torch.autograd.Function):
    @staticmethod
    def run(
        x: torch.Tensor,
        h0: torch.Tensor,
        starts: torch.Tensor,
        weight_ih: torch.Tensor,
        weight_hh: torch.Tensor,
        bias_ih: torch.Tensor,
        bias_hh: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Outputs, and what the backward reads: the states each step starts from, the
        gates (r and z after the sigmoid, gh_n) and the candidate n."""
        loops = compiled.for_tensor(x)
        if loops is None:
            return _gru_forward(x, h0, starts, weight_ih, weight_hh, bias_ih, bias_hh)
        steps, batch, _ = x.shape
        gi = torch.addmm(bias_ih, x.reshape(steps * batch, -1), weight_ih.t()).view(steps, batch, -1)
        return loops.gru_forward(gi, h0, starts, weight_hh.t().contiguous(), bias_hh)

    @staticmethod
    def forward(
        ctx: FunctionCtx,
        x: torch.Tensor,
        h0: torch.Tensor,
        starts: torch.Tensor,
        weight_ih: torch.Tensor,
        weight_hh: torch.Tensor,
        bias_ih: torch.Tensor,
        bias_hh: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        out, h_in, gates, n = _GRUSequence.run(x, h0, starts, weight_ih, weight_hh, bias_ih, bias_hh)
        ctx.save_for_backward(x, weight_ih, weight_hh, starts, h_in, gates, n)
        return out, out[-1].clone()

    @staticmethod
    @once_differentiable
    def backward(ctx: FunctionCtx, d_out: torch.Tensor, d_last: torch.Tensor | None) -> tuple:
        x, weight_ih, weight_hh, starts, h_in, gates, n = ctx.saved_tensors
        steps, batch, _ = n.shape
        # dh[t], the whole gradient of step t's output, starts as d_out[t]; the loop adds
        # what flows back from step t+1.
        dh = d_out.clone(memory_format=torch.contiguous_format)
        if d_last is not None:
            dh[-1] += d_last
        loops = compiled.for_tensor(x)
        if loops is not None:
            d_gi, d_gh, d_h0 = loops.gru_backward(dh, starts, weight_hh, h_in, gates, n)
        else:
            d_gi, d_gh, d_h0 = _gru_backward(dh, starts, weight_hh, h_in, gates, n)
        d_gh, d_gi = d_gh.view(steps * batch, -1), d_gi.view(steps * batch, -1)
        return (
            _matmul(d_gi, weight_ih).view_as(x) if ctx.needs_input_grad[0] else None,
            d_h0,
            None,
            _matmul(d_gi.t(), x.reshape(steps * batch, -1)),
            d_gh.t() @ h_in.view(steps * batch, -1),
            d_gi.sum(0),
            d_gh.sum(0),
        )


def _gru_backward(
    dh: torch.Tensor,
    starts: torch.Tensor,
    weight_hh: torch.Tensor,
    h_in: torch.Tensor,
    gates: torch.Tensor,
    n: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """GRU backward through time from dh (T, B, H), the gradients of the outputs, which it
    updates in place: d gi, d gh (T, B, 3H) and the gradient of h0."""
    steps, batch, hidden = n.shape
    resets, keep = _resets(starts, dh.dtype)
    r, z, gh_n = gates.split(hidden, dim=-1)
    # d gh_t = dh_t * dgh_dh_t for the r, z and n gates at once (dh_t, the gradient of
    # step t's output, broadcast over the gate axis); dgh_dh needs no recurrence, so
    # it is computed for all steps before the loop.
    dn_dh = (1 - z) * (1 - n * n)
    dgh_dh = dh.new_empty(steps, batch, 3, hidden)
    torch.mul(dn_dh * gh_n, r * (1 - r), out=dgh_dh[:, :, 0])
    torch.mul(h_in - n, z * (1 - z), out=dgh_dh[:, :, 1])
    torch.mul(dn_dh, r, out=dgh_dh[:, :, 2])
    d_gh = dh.new_empty(steps, batch, 3, hidden)
    d_h0 = torch.zeros_like(h_in[0])
    dh_t, dh_gates_t = dh.unbind(0), dh.unsqueeze(2).unbind(0)
    d_gh_t, d_gh_flat_t = d_gh.unbind(0), d_gh.view(steps, batch, -1).unbind(0)
    dgh_dh_t, z_t, keep_t = dgh_dh.unbind(0), z.unbind(0), keep.unbind(0)
    for t in range(steps - 1, -1, -1):
        torch.mul(dgh_dh_t[t], dh_gates_t[t], out=d_gh_t[t])
        # dh[t] z[t] + d_gh[t] W_hh flows into the state before step t: the previous
        # output's gradient (h0's at t = 0), except for rows starting an episode.
        previous = dh_t[t - 1] if t > 0 else d_h0
        into = previous if t not in resets else torch.zeros_like(d_h0)
        into.addcmul_(dh_t[t], z_t[t]).addmm_(d_gh_flat_t[t], weight_hh)
        if t in resets:
            previous.addcmul_(into, keep_t[t])
    # d gi: as d gh for r and z; for n, dh * dn_dh (r scales only gh_n).
    d_gi = d_gh.clone()
    torch.mul(dh, dn_dh, out=d_gi[:, :, 2])
    return d_gi.view(steps, batch, -1), d_gh.view(steps, batch, -1), d_h0


def _lstm_forward(
    x: torch.Tensor,
    h0: torch.Tensor,
    c0: torch.Tensor,
    starts: torch.Tensor,
    weight_ih: torch.Tensor,
    weight_hh: torch.Tensor,
    bias_ih: torch.Tensor,
    bias_hh: torch.Tensor,
) -> tuple[torch.Tensor, ...]:
    """The outputs, the states each step starts from (h and c), the gates after their
    activations, the cell states and their tanh, all (T, B, .)."""
    # i, f, o = sigmoid(.), g = tanh(.) of x W_ih^T + b_ih + h W_hh^T + b_hh (order i, f, g, o);
    # c' = f * c + i * g; h' = o * tanh(c').
    steps, batch, _ = x.shape
    hidden = weight_hh.shape[1]
    resets, keep, gates = _prepare(x, starts, weight_ih, bias_ih + bias_hh)
    c_out, tanh_c, out = (x.new_empty(steps, batch, hidden) for _ in range(3))
    gates_t, (if_t, g_t, o_t) = gates.unbind(0), _steps(gates, 2 * hidden, hidden, hidden)
    i_t, f_t = _steps(gates, hidden, hidden, 2 * hidden)[:2]
    c_out_t, tanh_c_t, out_t = c_out.unbind(0), tanh_c.unbind(0), out.unbind(0)
    w_hh_t = _transposed(weight_hh, steps)
    h, c = h0, c0
    for t in range(steps):
        if t in resets:
            h, c = h * keep[t], c * keep[t]
        gates_t[t].addmm_(h, w_hh_t)
        if_t[t].sigmoid_()
        g_t[t].tanh_()
        o_t[t].sigmoid_()
        c = torch.mul(f_t[t], c, out=c_out_t[t]).addcmul_(i_t[t], g_t[t])
        h = torch.mul(o_t[t], torch.tanh(c, out=tanh_c_t[t]), out=out_t[t])
    h_in, c_in = _states_in(h0, out, keep), _states_in(c0, c_out, keep)
    return out, h_in, c_in, gates, c_out, tanh_c


class _LSTMSequence(torch.autograd.Function):
    @staticmethod
    def run(
        x: torch.Tensor,
        h0: torch.Tensor,
        c0: torch.Tensor,
        starts: torch.Tensor,
        weight_ih: torch.Tensor,
        weight_hh: torch.Tensor,
        bias_ih: torch.Tensor,
        bias_hh: torch.Tensor,
    ) -> tuple[torch.Tensor, ...]:
        """As `_lstm_forward`, compiled where it can be."""
        loops = compiled.for_tensor(x)
        if loops is None:
            return _lstm_forward(x, h0, c0, starts, weight_ih, weight_hh, bias_ih, bias_hh)
        steps, batch, _ = x.shape
        gi = torch.addmm(bias_ih + bias_hh, x.reshape(steps * batch, -1), weight_ih.t())
        return loops.lstm_forward(gi.view(steps, batch, -1), h0, c0, starts, weight_hh.t().contiguous())

    @staticmethod
    def forward(
        ctx: FunctionCtx,
        x: torch.Tensor,
        h0: torch.Tensor,
        c0: torch.Tensor,
        starts: torch.Tensor,
        weight_ih: torch.Tensor,
        weight_hh: torch.Tensor,
        bias_ih: torch.Tensor,
        bias_hh: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        out, h_in, c_in, gates, c_out, tanh_c = _LSTMSequence.run(
            x, h0, c0, starts, weight_ih, weight_hh, bias_ih, bias_hh
        )
        ctx.save_for_backward(x, weight_ih, weight_hh, starts, h_in, c_in, gates, tanh_c)
        return out, out[-1].clone(), c_out[-1].clone()

    @staticmethod
    @once_differentiable
    def backward(
        ctx: FunctionCtx, d_out: torch.Tensor, d_h_last: torch.Tensor | None, d_c_last: torch.Tensor | None
    ) -> tuple:
        x, weight_ih, weight_hh, starts, h_in, c_in, gates, tanh_c = ctx.saved_tensors
        steps, batch, _ = tanh_c.shape
        # The compiled loop writes into dh and dc: contiguous copies of their own.
        dh, dc = (
            torch.zeros_like(h_in[0]) if d is None else d.clone(memory_format=torch.contiguous_format)
            for d in (d_h_last, d_c_last)
        )
        loops = compiled.for_tensor(x)
        backward = _lstm_backward if loops is None else loops.lstm_backward
        d_gates = backward(d_out, dh, dc, starts, weight_hh, c_in, gates, tanh_c)
        d_gates = d_gates.view(steps * batch, -1)
        d_bias = d_gates.sum(0)
        return (
            _matmul(d_gates, weight_ih).view_as(x) if ctx.needs_input_grad[0] else None,
            dh,
            dc,
            None,
            _matmul(d_gates.t(), x.reshape(steps * batch, -1)),
            d_gates.t() @ h_in.view(steps * batch, -1),
            d_bias,
            d_bias.clone(),  # two parameters must not share one gradient tensor
        )


def _lstm_backward(
    d_out: torch.Tensor,
    dh: torch.Tensor,
    dc: torch.Tensor,
    starts: torch.Tensor,
    weight_hh: torch.Tensor,
    c_in: torch.Tensor,
    gates: torch.Tensor,
    tanh_c: torch.Tensor,
) -> torch.Tensor:
    """LSTM backward through time from d_out (T, B, H) and the gradients of the last h and
    c, dh and dc, which it turns in place into those of h0 and c0: d gates (T, B, 4H)."""
    steps, _, hidden = tanh_c.shape
    resets, keep = _resets(starts, dh.dtype)
    i, f, g, o = gates.split(hidden, dim=-1)
    # Derivatives of the pre-activations with respect to h' (o) and c' (i, f, g), and
    # of c' with respect to h', for all steps at once.
    do_dh = (tanh_c * o * (1 - o)).unbind(0)
    dc_dh = (o * (1 - tanh_c * tanh_c)).unbind(0)
    di_dc = (g * i * (1 - i)).unbind(0)
    df_dc = (c_in * f * (1 - f)).unbind(0)
    dg_dc = (i * (1 - g * g)).unbind(0)
    f, keep_t, d_out_t = f.unbind(0), keep.unbind(0), d_out.unbind(0)
    d_gates = torch.empty_like(gates)
    d_gates_t, (d_i, d_f, d_g, d_o) = d_gates.unbind(0), _steps(d_gates, *[hidden] * 4)
    for t in range(steps - 1, -1, -1):
        dh += d_out_t[t]
        torch.mul(dh, do_dh[t], out=d_o[t])
        dc.addcmul_(dh, dc_dh[t])
        torch.mul(dc, di_dc[t], out=d_i[t])
        torch.mul(dc, df_dc[t], out=d_f[t])
        torch.mul(dc, dg_dc[t], out=d_g[t])
        dc.mul_(f[t])
        torch.mm(d_gates_t[t], weight_hh, out=dh)
        if t in resets:
            dh.mul_(keep_t[t])
            dc.mul_(keep_t[t])
    return d_gates
