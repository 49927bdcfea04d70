"""Networks for the benchmark: the NTM (LSTM or feedforward controller) and the LSTM baseline.

    from models import build_model, MODELS, presets
    net = build_model("ntm", 9, 8, **presets.preset("paper", "copy", "ntm")["options"])
"""

from __future__ import annotations

import importlib

# name -> the module that defines it. Imported on first use, for start-up time: `models.config`
# (no torch) is read by the command line's parser, which must answer `--help` without torch.
_EXPORTS = {
    "MODELS": "registry", "build_model": "registry", "model_options": "registry",
    "parameter_count": "registry", "coerce": "config", "OptionError": "config",
    "NTM": "ntm", "NTMConfig": "ntm", "NTMState": "ntm", "LSTMBaseline": "lstm",
    "LSTMConfig": "lstm",
}
__all__ = [*_EXPORTS, "presets"]


def __getattr__(name: str):
    if name == "presets":  # a module: on first use also keeps `python -m models.presets` single
        return importlib.import_module(".presets", __name__)
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
