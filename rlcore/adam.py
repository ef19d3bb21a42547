"""Adam (Kingma & Ba, 2015) on the one flat parameter of `rlcore.flat`, written out.

torch.optim.Adam computes the same, but building one imports torch._dynamo: 1.8 s of CPU
in every process that trains (each worker, each `rlserve train`, each test process), for
a feature we never use. Over one flat tensor the step is seven in-place kernels whatever
the number of parameters: as fast as torch's fused step for our small policies, about
twice its time (2 ms more a step) for a 1.7M-parameter Atari CNN. `state_dict` keeps
torch.optim's layout, so checkpoints made with torch.optim.Adam resume here, and back.
"""

from __future__ import annotations

import math
from typing import Any

import torch


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
        self.exp_avg = torch.zeros_like(param, memory_format=torch.preserve_format)
        self.exp_avg_sq = torch.zeros_like(param, memory_format=torch.preserve_format)
        # Written in place each step: a fresh tensor of a large model's size costs page faults.
        self.denominator = torch.empty_like(param, memory_format=torch.preserve_format)

    @torch.no_grad()
    def step(self) -> None:
        """m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g^2;  p <- p - lr m^ / (sqrt(v^) + eps),
        with m^ and v^ the bias-corrected moments."""
        group = self.param_groups[0]
        beta1, beta2 = group["betas"]
        grad = self.param.grad
        assert grad is not None, "step() before a backward pass"
        self.steps += 1
        self.exp_avg.lerp_(grad, 1 - beta1)
        self.exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        torch.sqrt(self.exp_avg_sq, out=self.denominator)
        self.denominator.div_(math.sqrt(1 - beta2**self.steps)).add_(group["eps"])
        self.param.addcdiv_(self.exp_avg, self.denominator, value=-group["lr"] / (1 - beta1**self.steps))

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
