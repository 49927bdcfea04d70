"""Every run records what it trained on (RUN/hardware.json, the W&B config) and its training wall
time at every validation (`val/wall_s`), summed across a resume."""

from __future__ import annotations

import json
import time
from pathlib import Path

import lightning.pytorch as pl

import pandas as pd
import torch

from core.hardware import cpu_model
from core.train import train
from test_training import wandb_records


def test_a_run_records_its_hardware_and_its_wall_time_per_validation(tmp_path: Path, tiny_config):
    run = tmp_path / "run"
    train(tiny_config(run, max_steps=6, val_every=3))
    (entry,) = json.loads((run / "hardware.json").read_text())
    assert entry["from_step"] == 0
    assert entry["hardware"] == {"accelerator": "cpu", "device": cpu_model(), "devices": 1,
                                 "strategy": "auto", "torch_threads": torch.get_num_threads(),
                                 "cpu_cores": entry["hardware"]["cpu_cores"],
                                 "torch": torch.__version__}
    (record,) = [r for r in wandb_records(run) if r["type"] == "run"]
    assert record["run"]["config"]["update"]["hardware"] == entry["hardware"]
    rows = pd.read_csv(run / "csv/metrics.csv").dropna(subset=["val/wall_s"])
    assert rows["step"].tolist() == [2, 5]  # beside each validation
    assert 0 < rows["val/wall_s"].iloc[0] < rows["val/wall_s"].iloc[1]


class Slow(pl.Callback):
    def on_train_batch_end(self, *args) -> None:
        time.sleep(0.5)


def test_the_wall_clock_goes_on_across_a_resume(tmp_path: Path, tiny_config):
    # the first attempt trains 3 slow steps (> 1.5 s); the resumed attempt's clock starts there
    run = tmp_path / "run"
    train(tiny_config(run, max_steps=3, val_every=3, checkpoint_every=3), callbacks=[Slow()])
    first = pd.read_csv(run / "csv/metrics.csv").dropna(subset=["val/wall_s"])["val/wall_s"]
    train(tiny_config(run, max_steps=6, val_every=3, checkpoint_every=3))  # extended: resumes at 3
    rows = pd.read_csv(run / "csv/metrics.csv").dropna(subset=["val/wall_s"])
    assert rows["step"].tolist() == [2, 5]
    assert rows["val/wall_s"].iloc[0] == first.iloc[0]  # the first attempt's row, kept
    assert first.iloc[0] > 1.5
    assert rows["val/wall_s"].iloc[1] > first.iloc[0]  # counted on from the checkpoint
    entries = json.loads((run / "hardware.json").read_text())
    assert [e["from_step"] for e in entries] == [0, 3]
