"""rlcore: recurrent policy-gradient trainers for agents with memory (PyTorch + Gymnasium).

The names below load on first use, so that `import rlcore.spec` (the API's validation
path) does not pull in torch and onnx.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rlcore.export import export_policy, load_policy
    from rlcore.spec import TrainSpec
    from rlcore.trainer import TrainResult, train

_EXPORTS = {
    "TrainResult": "rlcore.trainer",
    "TrainSpec": "rlcore.spec",
    "export_policy": "rlcore.export",
    "load_policy": "rlcore.export",
    "train": "rlcore.trainer",
}
__all__ = ["TrainResult", "TrainSpec", "export_policy", "load_policy", "train"]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'rlcore' has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)
