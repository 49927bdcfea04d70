"""The learning rate over a run (models/optim.py builds the optimizer that follows it).

    constant  the paper's: `lr` at every step
    cosine    `lr` falling along half a cosine to 0 at `max_steps` (late steps get small, so a
              spike near the end cannot undo what was learned)

Either starts with `warmup_steps` of linear warm-up from 0 (default 0: none). The factor is
applied to each parameter group's own `lr`, so a population's members keep their own rates:

    lr_factor("cosine", step=500, max_steps=1000)   -> 0.5
    lr_factor("constant", step=5, max_steps=1000, warmup_steps=10) -> 0.6

A cosine's factor is a function of `max_steps`, so a finished run of it is not extended to a
larger budget (core/run_dir.py refuses: it would resume at a higher rate than it ended with).
"""

from __future__ import annotations

import math

SCHEDULES = ("constant", "cosine")
BUDGET_SCHEDULES = ("cosine",)  # those whose factor depends on max_steps


def lr_factor(schedule: str, step: int, max_steps: int, warmup_steps: int = 0) -> float:
    """The multiple of `lr` used by update number `step` (0-based)."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "constant":
        return 1.0
    done = (step - warmup_steps) / max(1, max_steps - warmup_steps)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, done)))
