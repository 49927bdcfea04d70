"""Networks for the benchmark: the NTM (LSTM or feedforward controller) and the LSTM baseline.

    from models import build_model, MODELS, presets
    net = build_model("ntm", 9, 8, **presets.preset("paper", "copy", "ntm")["options"])
"""

from __future__ import annotations

import importlib

from .config import coerce
from .lstm import LSTMBaseline, LSTMConfig
from .ntm import NTM, NTMConfig, NTMState
from .registry import MODELS, build_model, model_options

__all__ = [
    "MODELS", "build_model", "model_options", "coerce", "presets",
    "NTM", "NTMConfig", "NTMState", "LSTMBaseline", "LSTMConfig",
]


def __getattr__(name: str):
    # `presets` is imported on first use so that `python -m models.presets` runs it only once.
    if name == "presets":
        return importlib.import_module(".presets", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
