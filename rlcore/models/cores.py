"""Memory cores: what each model variant remembers between steps, behind one interface.

Every core maps features (T, B, F) plus a state (B, *state_shape) and episode-start
flags (T, B) to outputs (T, B, H) and the state after the last step. The state of a
column is zeroed wherever its episode starts, both while acting (T=1) and while
replaying a rollout chunk (T>1), so the policy trained is the policy that acted.
"""

from __future__ import annotations

import itertools

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from rlcore.models.recurrence import gru_sequence, lstm_sequence
from rlcore.models.segments import split_at_episode_starts


def reset_where(state: torch.Tensor, starts: torch.Tensor) -> torch.Tensor:
    """Zero the state of the batch rows whose episode starts now."""
    keep = (~starts).to(state.dtype).view(-1, *([1] * (state.dim() - 1)))
    return state * keep


class MemoryCore(nn.Module):
    """Base class: `state_shape` is the per-env state; () -sized cores keep none."""

    state_shape: tuple[int, ...] = (0,)
    out_features: int

    def initial_state(self, batch: int, device: torch.device | str = "cpu") -> torch.Tensor:
        return torch.zeros(batch, *self.state_shape, device=device)

    @property
    def is_recurrent(self) -> bool:
        return self.state_shape[0] > 0


class FeedForwardCore(MemoryCore):
    """`mlp`: no memory at all."""

    def __init__(self, features: int, hidden: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(features, hidden), nn.ReLU())
        self.out_features = hidden

    def forward(
        self, x: torch.Tensor, state: torch.Tensor, starts: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return self.net(x), state


class StatelessGRUCellCore(MemoryCore):
    """`gru_cell`: a GRUCell fed a zero hidden state at every step, as in the forum thread.

    It is a feed-forward layer with gates; kept as a named baseline because it is the
    variant that "worked" in the thread.
    """

    def __init__(self, features: int, hidden: int) -> None:
        super().__init__()
        self.cell = nn.GRUCell(features, hidden)
        self.out_features = hidden

    def forward(
        self, x: torch.Tensor, state: torch.Tensor, starts: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.cell(x.reshape(-1, x.shape[-1]))
        return out.reshape(*x.shape[:-1], -1), state


class RecurrentCore(MemoryCore):
    """`gru` and `lstm`: state carried step to step within an episode.

    The state is batch-first, (B, layers, H) for a GRU and (B, 2 * layers, H) for an
    LSTM (h then c), so rollouts can store and index it like any other per-env array.
    """

    def __init__(self, kind: str, features: int, hidden: int, layers: int) -> None:
        super().__init__()
        rnn_class = {"gru": nn.GRU, "lstm": nn.LSTM}[kind]
        self.rnn = rnn_class(features, hidden, layers)
        self.lstm = kind == "lstm"
        self.layers = layers
        self.out_features = hidden
        self.state_shape = ((2 if self.lstm else 1) * layers, hidden)
        for name, param in self.rnn.named_parameters():
            if name.startswith("bias"):
                nn.init.zeros_(param)
            else:
                nn.init.orthogonal_(param)

    def _to_rnn(self, state: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        state = state.transpose(0, 1).contiguous()
        if self.lstm:
            return state[: self.layers], state[self.layers :]
        return state

    def _from_rnn(self, state: torch.Tensor | tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        if self.lstm:
            state = torch.cat(state, dim=0)
        return state.transpose(0, 1)

    def forward(
        self, x: torch.Tensor, state: torch.Tensor, starts: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if x.is_cuda or torch.onnx.is_in_onnx_export():
            return self._run_torch_rnn(x, state, starts)
        if self.lstm and x.shape[0] > 1 and torch.is_grad_enabled():
            # Training an LSTM on a CPU: PyTorch's own layer runs oneDNN's fused LSTM,
            # forward and backward about 2x faster than the hand-written loop, but only
            # over whole (unpacked) sequences. So call it between the steps where some
            # row starts an episode, when those are few; else the loop is faster.
            # (oneDNN's PyTorch path has no GRU: there the hand-written loop is faster.)
            reset_steps = (torch.nonzero(starts[1:].any(dim=1)).flatten() + 1).tolist()
            if len(reset_steps) <= x.shape[0] // 8:
                return self._run_lstm_between_resets(x, state, starts, reset_steps)
        return self._run_sequence(x, state, starts)

    def _run_lstm_between_resets(
        self, x: torch.Tensor, state: torch.Tensor, starts: torch.Tensor, reset_steps: list[int]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """`nn.LSTM` over each stretch of steps in which no row starts an episode."""
        h, c = self._to_rnn(reset_where(state, starts[0]))
        bounds = [0, *reset_steps, x.shape[0]]
        outputs = []
        for begin, end in itertools.pairwise(bounds):
            if begin > 0:
                keep = (~starts[begin]).to(x.dtype).view(1, -1, 1)
                h, c = h * keep, c * keep
            out, (h, c) = self.rnn(x[begin:end], (h, c))
            outputs.append(out)
        return torch.cat(outputs), self._from_rnn((h, c))

    def _run_torch_rnn(
        self, x: torch.Tensor, state: torch.Tensor, starts: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Through `nn.GRU`/`nn.LSTM`: cuDNN on a GPU, standard operators in ONNX."""
        state = reset_where(state, starts[0])
        if x.shape[0] == 1 or not bool(starts[1:].any()):
            out, new_state = self.rnn(x, self._to_rnn(state))
            return out, self._from_rnn(new_state)

        # Episodes start inside the chunk: run each episode piece as its own sequence,
        # all of them in one packed call (a few cuDNN kernels), instead of looping over
        # time in Python.
        segments = split_at_episode_starts(starts)
        initial = state.new_zeros(segments.count, *self.state_shape)
        initial[segments.first_of_column] = state
        packed = pack_padded_sequence(segments.scatter(x), segments.lengths.cpu(), enforce_sorted=False)
        out, final = self.rnn(packed, self._to_rnn(initial))
        out, _ = pad_packed_sequence(out)
        return segments.gather(out), self._from_rnn(final)[segments.last_of_column]

    def _run_sequence(
        self, x: torch.Tensor, state: torch.Tensor, starts: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """On the CPU, layer after layer, with the hand-written backward of
        `rlcore.models.recurrence`: about 2x faster than autograd through a cell loop when
        training, and far faster than `nn.LSTM`'s oneDNN path for one acting step."""
        rnn, layers = self.rnn, self.layers
        h, c = state[:, :layers], state[:, layers:]
        final_h, final_c = [], []
        for layer in range(layers):
            weights = [getattr(rnn, f"{name}_l{layer}") for name in _WEIGHT_NAMES]
            if self.lstm:
                x, h_last, c_last = lstm_sequence(x, h[:, layer], c[:, layer], starts, *weights)
                final_c.append(c_last)
            else:
                x, h_last = gru_sequence(x, h[:, layer], starts, *weights)
            final_h.append(h_last)
        return x, torch.stack(final_h + final_c, dim=1)


_WEIGHT_NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


class WindowCore(MemoryCore):
    """`window`: a GRU over the last k feature vectors, zero-padded before the episode start.

    No hidden state is carried; the state is the buffer of the previous k-1 features,
    so acting one step at a time and replaying a chunk see the same windows.
    """

    def __init__(self, features: int, hidden: int, window: int) -> None:
        super().__init__()
        self.rnn = nn.GRU(features, hidden)
        self.window = window
        self.out_features = hidden
        self.state_shape = (window - 1, features)

    @property
    def is_recurrent(self) -> bool:
        return self.window > 1

    def forward(
        self, x: torch.Tensor, state: torch.Tensor, starts: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        time_steps, batch, features = x.shape
        k = self.window
        history = torch.cat([reset_where(state, starts[0]), x.transpose(0, 1)], dim=1)
        if time_steps == 1:
            # Acting (and the ONNX export): the one window is the reset buffer plus x.
            out, _ = self.rnn(history.transpose(0, 1))
            return out[-1:], history[:, 1:].reshape(batch, k - 1, features)

        # Index (in `history`) of the most recent episode start at or before each step;
        # window entries older than that belong to the previous episode and are zeroed.
        steps = torch.arange(time_steps, device=x.device).unsqueeze(1)
        start_at = torch.where(starts, steps, torch.full_like(steps, -(k + 1)))
        first_valid = torch.cummax(start_at, dim=0).values + (k - 1)  # (T, B)

        windows = history.unfold(1, k, 1).permute(0, 1, 3, 2)  # (B, T, k, F)
        position = steps.T.unsqueeze(-1) + torch.arange(k, device=x.device)  # (1, T, k)
        valid = position >= first_valid.T.unsqueeze(-1)  # (B, T, k)
        windows = windows * valid.unsqueeze(-1).to(x.dtype)

        out, _ = self.rnn(windows.reshape(batch * time_steps, k, features).transpose(0, 1))
        out = out[-1].reshape(batch, time_steps, -1).transpose(0, 1)

        new_state = windows[:, -1, 1:] if k > 1 else state
        return out, new_state


def build_core(kind: str, features: int, hidden: int, layers: int, window: int) -> MemoryCore:
    """The memory core for a model variant name."""
    if kind == "mlp":
        return FeedForwardCore(features, hidden)
    if kind == "gru_cell":
        return StatelessGRUCellCore(features, hidden)
    if kind in ("gru", "lstm"):
        return RecurrentCore(kind, features, hidden, layers)
    if kind == "window":
        return WindowCore(features, hidden, window)
    raise ValueError(f"unknown model variant {kind!r}")
