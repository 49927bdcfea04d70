"""Slow tier: a small NTM really learns copy (lengths 1..5) to zero bit errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.train import train


@pytest.mark.slow
def test_small_ntm_learns_copy_to_zero_bit_errors(tmp_path: Path, tiny_config) -> None:
    cfg = tiny_config(
        tmp_path / "run",
        model_options={"memory_size": 16, "memory_width": 8, "controller_size": 32},
        task_options={"max_length": 5, "test_lengths": [5]},
        lr=3e-3, batch_size=16, max_steps=2000, val_every=500, checkpoint_every=500,
        val_batches=5, val_batch_size=50, test_batch_size=200,
    )
    result = train(cfg)
    assert result.metrics["val/bit_errors"] == 0.0
    assert result.metrics["val/seq_acc"] == 1.0
    row = result.test.iloc[0]
    assert row["label"] == "len_005" and row["bit_errors"] == 0.0 and row["seq_acc"] == 1.0
