"""Every run records what it trained on (RUN/hardware.json, the W&B config) and its training wall
time at every validation (`val/wall_s`), summed across a resume."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import lightning.pytorch as pl
import pandas as pd
import pytest
import torch

from core.hardware import cpu_model
from core.train import train
from reports.command import build_report
from test_training import wandb_records

TINY = ["--task", "copy", "--preset", "none", "-m", "memory_size=8", "-m", "memory_width=4",
        "-m", "controller_size=8", "-t", "max_length=3", "-t", "test_lengths=[5]", "--max-steps", "4",
        "--val-every", "2", "--checkpoint-every", "2", "--batch-size", "2", "--val-batches", "2",
        "--val-batch-size", "2", "--test-batch-size", "2", "--accelerator", "cpu", "--no-progress"]


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


@pytest.fixture(scope="module")
def two_ways(tmp_path_factory) -> Path:
    """One experiment (a tiny copy NTM, seed 0) trained in one CPU process and in two (DDP)."""
    root = tmp_path_factory.mktemp("hardware")
    script = Path(sys.executable).parent / "ntmbench"
    for name, devices in (("one", []), ("two", ["--devices", "2", "--strategy", "ddp"])):
        proc = subprocess.run([str(script), "train", *TINY, *devices, "--out", str(root / name)],
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
    return root


def test_ddp_on_two_cpu_processes_writes_one_checkpoint(two_ways: Path) -> None:
    out = two_ways / "two"
    assert [p.name for p in (out / "checkpoints").iterdir()] == ["last.ckpt"]
    ckpt = torch.load(out / "checkpoints" / "last.ckpt", weights_only=False)
    assert ckpt["global_step"] == 4
    assert len(list(out.glob("wandb/offline-run-*"))) == 1
    assert pd.read_csv(out / "test_metrics.csv")["label"].tolist() == ["len_005"]
    (entry,) = json.loads((out / "hardware.json").read_text())
    assert entry["hardware"]["devices"] == 2 and entry["hardware"]["strategy"] == "ddp"


def test_the_report_puts_one_and_two_cpu_processes_side_by_side(two_ways: Path) -> None:
    # a threshold no validation misses: every run "converges" at its first validation (step 2)
    report = build_report([str(two_ways)], [], None, None, str(two_ways / "report"), threshold=1e9)
    rows = pd.read_csv(two_ways / "report" / "hardware.csv")
    assert rows["hardware"].tolist() == ["2 CPU processes (ddp), 1 thread each", "CPU, 1 thread"]
    assert rows[["task", "variant", "seeds", "converged"]].values.tolist() == [["copy", "ntm", 1, 1]] * 2
    # sequences seen at step 2: 2 steps x batch 2 x processes
    assert rows["seqs_to_converge"].tolist() == [8.0, 4.0]
    for name, row in zip(("two", "one"), rows.itertuples()):
        clock = pd.read_csv(two_ways / name / "csv/metrics.csv").dropna(subset=["val/wall_s"])
        assert row.wall_s_to_converge == pytest.approx(clock["val/wall_s"].iloc[0])
        assert row.wall_s == pytest.approx(clock["val/wall_s"].iloc[-1])
        tests = pd.read_csv(two_ways / name / "test_metrics.csv")
        assert row.cost_bits == pytest.approx(tests["cost_bits"].mean())
        assert row.bit_errors == pytest.approx(tests["bit_errors"].mean())
    heading = "copy across hardware (medians over seeds; test: mean over the test shapes)"
    summary = report.summary.read_text()
    assert f"## {heading}" in summary and "2 CPU processes (ddp), 1 thread each" in summary
    assert "hardware.csv" in report.index.read_text()
