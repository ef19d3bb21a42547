"""Adam (Kingma & Ba, 2015) on the one flat parameter of `rlcore.flat`, written out.

torch.optim.Adam computes the same, but building one imports torch._dynamo: 1.8 s of CPU
in every process that trains (each worker, each `rlserve train`, each test process), for
a feature we never use. The step calls the kernel behind `torch.optim.Adam(fused=True)`
directly (`torch._fused_adam_`: one pass over the parameter, 2.4x faster than seven
in-place kernels at 400k parameters); where that operator is missing, the same update
runs as those seven kernels (`_step_in_kernels`), which also spell out what it computes.
`state_dict` keeps torch.optim's layout, so checkpoints made with torch.optim.Adam resume
here, and back.
"""

from __future__ import annotations

import math
from typing import Any

import torch

# torch's fused Adam kernel (CPU and CUDA), or None in a build without it.
_FUSED_ADAM = getattr(torch, "_fused_adam_", None)


class Adam:
    """Adam over `param` (one tensor, its gradient in `param.grad`). Set the learning rate
    with `param_groups[0]["lr"]`, as for a torch optimiser."""

    def __init__(
        self, param: torch.Tensor, lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8
    ) -> None:
        self.param = param
        # torch.optim.Adam's group, so that its state_dict loads either way.
        self.param_groups: list[dict[str, Any]] = [
            {
                "lr": lr,
                "betas": betas,
                "eps": eps,
                "weight_decay": 0.0,
                "amsgrad": False,
                "maximize": False,
                "foreach": None,
                "capturable": False,
                "differentiable": False,
                "fused": None,
                "decoupled_weight_decay": False,
                "params": [0],
            }
        ]
        self.steps = 0
        # The fused kernel reads the step count from a tensor (torch.optim's `step` state).
        self.step_count = torch.zeros((), dtype=torch.float32, device=param.device)
        self.exp_avg = torch.zeros_like(param, memory_format=torch.preserve_format)
        self.exp_avg_sq = torch.zeros_like(param, memory_format=torch.preserve_format)
        # The seven kernels' scratch, made once: a fresh tensor of a large model's size each
        # step costs page faults.
        self.denominator: torch.Tensor | None = None

    @torch.no_grad()
    def step(self) -> None:
        """m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g^2;  p <- p - lr m^ / (sqrt(v^) + eps),
        with m^ and v^ the bias-corrected moments."""
        group = self.param_groups[0]
        beta1, beta2 = group["betas"]
        grad = self.param.grad
        assert grad is not None, "step() before a backward pass"
        self.steps += 1
        if _FUSED_ADAM is None:
            self._step_in_kernels(grad, group["lr"], beta1, beta2, group["eps"])
            return
        self.step_count.fill_(self.steps)
        _FUSED_ADAM(
            [self.param],
            [grad],
            [self.exp_avg],
            [self.exp_avg_sq],
            [],
            [self.step_count],
            lr=group["lr"],
            beta1=beta1,
            beta2=beta2,
            weight_decay=0.0,
            eps=group["eps"],
            amsgrad=False,
            maximize=False,
        )

    def _step_in_kernels(self, grad: torch.Tensor, lr: float, beta1: float, beta2: float, eps: float) -> None:
        if self.denominator is None:
            self.denominator = torch.empty_like(self.param, memory_format=torch.preserve_format)
        self.exp_avg.lerp_(grad, 1 - beta1)
        self.exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        torch.sqrt(self.exp_avg_sq, out=self.denominator)
        self.denominator.div_(math.sqrt(1 - beta2**self.steps)).add_(eps)
        self.param.addcdiv_(self.exp_avg, self.denominator, value=-lr / (1 - beta1**self.steps))

    def state_dict(self) -> dict[str, Any]:
        """torch.optim.Adam's state_dict for the same parameter and state."""
        state = {}
        if self.steps:
            state[0] = {
                "step": torch.tensor(float(self.steps)),
                "exp_avg": self.exp_avg.clone(),
                "exp_avg_sq": self.exp_avg_sq.clone(),
            }
        return {"state": state, "param_groups": [dict(group) for group in self.param_groups]}

    def load_state_dict(self, saved: dict[str, Any]) -> None:
        """Load a state_dict of this class or of torch.optim.Adam over one parameter."""
        (group,) = saved["param_groups"]
        self.param_groups = [{**self.param_groups[0], **group, "params": [0]}]
        state = saved["state"].get(0)
        if state is None:  # saved before the first step
            self.steps = 0
            self.exp_avg.zero_()
            self.exp_avg_sq.zero_()
            return
        self.steps = int(state["step"])
        self.exp_avg.copy_(state["exp_avg"])
        self.exp_avg_sq.copy_(state["exp_avg_sq"])
