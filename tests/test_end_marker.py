"""reports/end_marker.py: when a repeat-copy model emits its end marker, on hand-made outputs."""

from __future__ import annotations

import math

import numpy as np
import torch

from datamodules.registry import build_task
from reports.end_marker import marker_stats

L, R = 3, 4


def batch() -> tuple[np.ndarray, np.ndarray]:
    b = build_task("repeat_copy").sample(torch.Generator().manual_seed(0), 5, length=L, repeats=R)
    return b["targets"].numpy(), b["mask"].numpy()


def test_perfect_outputs_fire_the_marker_on_time() -> None:
    targets, mask = batch()
    stats = marker_stats(targets.copy(), targets, mask, L)
    assert stats == {"data_errors": 0.0, "marker_errors": 0.0, "marker_copies": 0.0, "never": 0.0}


def test_a_marker_one_copy_early_and_a_wrong_data_bit() -> None:
    targets, mask = batch()
    outputs = targets.copy()
    end = L + 2 + L * R  # the target's marker step, the last one
    outputs[:, end - L, -1] = 1.0  # every sequence also fires one copy (L steps) early
    outputs[0, L + 2, 0] = 1 - outputs[0, L + 2, 0]  # one data bit wrong in sequence 0
    stats = marker_stats(outputs, targets, mask, L)
    assert stats == {"data_errors": 0.2, "marker_errors": 1.0, "marker_copies": -1.0, "never": 0.0}


def test_a_marker_never_emitted_is_never_not_a_copy_count() -> None:
    targets, mask = batch()
    outputs = targets.copy()
    outputs[:, :, -1] = 0.0
    stats = marker_stats(outputs, targets, mask, L)
    assert stats["never"] == 1.0 and math.isnan(stats["marker_copies"])
    assert stats["marker_errors"] == 1.0 and stats["data_errors"] == 0.0
