"""rlcore: recurrent policy-gradient trainers for agents with memory (PyTorch + Gymnasium)."""

from rlcore.export import export_policy, load_policy
from rlcore.spec import TrainSpec
from rlcore.trainer import TrainResult, train

__all__ = ["TrainResult", "TrainSpec", "export_policy", "load_policy", "train"]
