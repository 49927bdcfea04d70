"""The optimizer of a run or a population: Adam or the paper's RMSProp over parameter groups,
stepped along the run's learning-rate schedule (models/schedule.py)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from .schedule import lr_factor

# "rmsprop-centered": RMSProp in the form of Graves (2013, eqs. 38-41), which the NTM paper
# trained with: centered (the running mean of the gradient is subtracted from the running mean of
# its square) and a floor k = 1e-4 on the variance under the square root. torch adds its eps
# outside the root, so sqrt(k) = 1e-2 is the nearest floor; where the variance is far below k the
# step is momentum SGD at lr / 1e-2, not the sign-like step of plain RMSProp (eps 1e-8).
CENTERED_EPS = 1e-2


def optimizers(groups: Iterable[dict[str, Any]], config: dict[str, Any]) -> Any:
    """Lightning's `configure_optimizers` value for parameter groups (each with its own `lr`,
    and `momentum` under RMSProp): Adam (beta1 = `momentum`) or the paper's RMSProp (Graves
    2013, 2014: momentum 0.9, decay 0.95; `rmsprop-centered` as Graves 2013 writes it, above),
    with the run's schedule stepped every update.
    Configs written before schedules existed read as constant."""
    groups = list(groups)
    if config["optimizer"] == "adam":
        for group in groups:
            group["betas"] = (group.pop("momentum"), 0.999)
        optimizer: torch.optim.Optimizer = torch.optim.Adam(groups)
    elif config["optimizer"] == "rmsprop-centered":
        optimizer = torch.optim.RMSprop(groups, alpha=0.95, centered=True, eps=CENTERED_EPS)
    else:
        optimizer = torch.optim.RMSprop(groups, alpha=0.95)
    schedule = config.get("lr_schedule", "constant")
    warmup = config.get("warmup_steps", 0)
    if schedule == "constant" and not warmup:
        return optimizer
    max_steps = config["max_steps"]
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(schedule, step, max_steps, warmup))
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
