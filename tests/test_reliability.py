"""Reliability: kill and resume, a raised budget, determinism, concurrent runs, bad input that writes nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from bench.cli import main
from core.config import ConfigError
from core.train import train

NTMBENCH = str(Path(sys.executable).parent / "ntmbench")
ENV = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true"}


def write_config(path: Path, tiny_config, **changes) -> Path:
    cfg = tiny_config("", **changes).to_dict()
    cfg.pop("out")
    path.write_text(yaml.safe_dump(cfg))
    return path


def start(config: Path, cwd: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([NTMBENCH, "train", "--config", str(config), *extra], cwd=cwd, env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(path: Path, proc: subprocess.Popen, timeout: float = 120) -> None:
    end = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.stderr.read()[-2000:]
        assert time.monotonic() < end, f"{path} never appeared"
        time.sleep(0.02)


def test_killed_run_resumes_to_the_same_result(tmp_path: Path, tiny_config) -> None:
    config = write_config(tmp_path / "c.yaml", tiny_config, max_steps=120, val_every=20,
                          checkpoint_every=10)
    proc = start(config, tmp_path, "--out", "killed")
    wait_for(tmp_path / "killed" / "checkpoints" / "last.ckpt", proc)
    time.sleep(0.3)  # let it run on past the checkpoint, so some work is lost and redone
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = torch.load(tmp_path / "killed/checkpoints/last.ckpt", weights_only=False)["global_step"]
    assert 0 < killed_at < 120 and not (tmp_path / "killed" / "test_metrics.csv").exists()

    again = subprocess.run([NTMBENCH, "train", "--config", str(config), "--out", "killed"],
                           cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    whole = subprocess.run([NTMBENCH, "train", "--config", str(config), "--out", "whole"],
                           cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=300)
    assert whole.returncode == 0, whole.stderr[-2000:]

    resumed = torch.load(tmp_path / "killed/checkpoints/last.ckpt", weights_only=False)
    assert resumed["global_step"] == 120
    a = pd.read_csv(tmp_path / "killed" / "test_metrics.csv")
    b = pd.read_csv(tmp_path / "whole" / "test_metrics.csv")
    assert a["cost_bits"].tolist() == pytest.approx(b["cost_bits"].tolist(), rel=1e-5)
    # the CSV history survives the resume: every validation of the uninterrupted run is there once
    va = pd.read_csv(tmp_path / "killed/csv/metrics.csv").dropna(subset=["val/cost_bits"])
    vb = pd.read_csv(tmp_path / "whole/csv/metrics.csv").dropna(subset=["val/cost_bits"])
    assert va["step"].tolist() == vb["step"].tolist() == [19, 39, 59, 79, 99, 119]
    assert va["val/cost_bits"].tolist() == pytest.approx(vb["val/cost_bits"].tolist(), rel=1e-5)
    # one W&B run id for both attempts
    run_id = (tmp_path / "killed" / "wandb_id").read_text().strip()
    folders = list((tmp_path / "killed").glob("wandb/offline-run-*"))
    assert len(folders) == 2 and all(run_id in f.name for f in folders)


KILL_AT = """
import os, sys
sys.path.insert(0, {tests!r})
import lightning.pytorch as pl
from conftest import tiny
from core.train import train

class Kill(pl.Callback):  # dies as SIGKILL would: no hook, no logger finalize, nothing flushed
    def on_validation_start(self, trainer, *args):
        if trainer.global_step == {step}:
            os._exit(9)

train(tiny({out!r}, max_steps=120, val_every=20, checkpoint_every=10), callbacks=[Kill()])
"""


def test_a_run_killed_during_a_validation_redoes_it(tmp_path, tiny_config):
    # killed while validating after step 20, a checkpoint step too: the checkpoint of step 20 is
    # written after its validation, so the resume starts from step 10 and validates at 20 again
    # (a checkpoint taken before the validation resumed past it: that point was lost)
    out = tmp_path / "run"
    script = KILL_AT.format(tests=str(Path(__file__).parent), step=20, out=str(out))
    killed = subprocess.run([sys.executable, "-c", script], env=ENV, capture_output=True, text=True,
                            timeout=300)
    assert killed.returncode == 9, killed.stderr[-2000:]
    assert torch.load(out / "checkpoints/last.ckpt", weights_only=False)["global_step"] == 10
    train(tiny_config(out, max_steps=120, val_every=20, checkpoint_every=10))
    rows = pd.read_csv(out / "csv/metrics.csv").dropna(subset=["val/cost_bits"])
    assert rows["step"].tolist() == [19, 39, 59, 79, 99, 119]  # each validation once


def test_same_seed_gives_bit_identical_metrics(tmp_path: Path, tiny_config) -> None:
    train(tiny_config(tmp_path / "a", max_steps=12, val_every=4))
    train(tiny_config(tmp_path / "b", max_steps=12, val_every=4))
    a = pd.read_csv(tmp_path / "a/csv/metrics.csv")
    b = pd.read_csv(tmp_path / "b/csv/metrics.csv")
    # every result is bit-identical; val/wall_s is a measurement of the machine, not a result
    assert a["val/wall_s"].notna().sum() == b["val/wall_s"].notna().sum() == 3
    pd.testing.assert_frame_equal(a.drop(columns="val/wall_s"), b.drop(columns="val/wall_s"),
                                  check_exact=True)
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "a/test_metrics.csv"),
                                  pd.read_csv(tmp_path / "b/test_metrics.csv"), check_exact=True)
    train(tiny_config(tmp_path / "c", max_steps=12, val_every=4, seed=1))
    c = pd.read_csv(tmp_path / "c/csv/metrics.csv")
    assert not a["val/cost_bits"].dropna().equals(c["val/cost_bits"].dropna())


def test_a_raised_budget_extends_the_run_to_the_uninterrupted_result(tmp_path: Path, tiny_config) -> None:
    # 6 is no multiple of checkpoint_every: the run resumes from its end-of-training checkpoint
    train(tiny_config(tmp_path / "run", max_steps=6, val_every=3, checkpoint_every=4))
    short_test = (tmp_path / "run" / "test_metrics.csv").read_text()
    train(tiny_config(tmp_path / "run", max_steps=12, val_every=3, checkpoint_every=4))
    train(tiny_config(tmp_path / "whole", max_steps=12, val_every=3, checkpoint_every=4))

    # the extended run is the run that had the larger budget from the start
    extended = torch.load(tmp_path / "run/checkpoints/last.ckpt", weights_only=False)
    whole = torch.load(tmp_path / "whole/checkpoints/last.ckpt", weights_only=False)
    assert extended["global_step"] == whole["global_step"] == 12
    for name, value in whole["state_dict"].items():
        assert torch.equal(extended["state_dict"][name], value), name
    a, b = (pd.read_csv(tmp_path / d / "test_metrics.csv") for d in ("run", "whole"))
    assert a["cost_bits"].tolist() == b["cost_bits"].tolist()
    va, vb = (pd.read_csv(tmp_path / d / "csv/metrics.csv").dropna(subset=["val/cost_bits"])
              for d in ("run", "whole"))
    assert va["step"].tolist() == vb["step"].tolist() == [2, 5, 8, 11]
    assert va["val/cost_bits"].tolist() == vb["val/cost_bits"].tolist()
    # the config says what was trained; the shorter budget's test is kept beside it
    assert yaml.safe_load((tmp_path / "run/config.yaml").read_text())["max_steps"] == 12
    assert (tmp_path / "run/test_metrics.max_steps-6.csv").read_text() == short_test


def run_files(run: Path) -> dict[Path, bytes]:
    """Every file of a run folder and its bytes, but wandb's own debug logs (debug*.log and the
    links to them): wandb's service process appends to them ("stream closed") after `finish`
    returns, on its own schedule, so a snapshot taken right after a run races with it."""
    return {p: p.read_bytes() for p in run.rglob("*")
            if p.is_file() and not (p.name.startswith("debug") and p.suffix == ".log")}


def test_a_lowered_budget_is_refused_and_changes_nothing(tmp_path: Path, tiny_config) -> None:
    train(tiny_config(tmp_path / "run", max_steps=6, val_every=3))
    before = run_files(tmp_path / "run")
    with pytest.raises(ConfigError, match="a budget can only grow .*choose another --out"):
        train(tiny_config(tmp_path / "run", max_steps=3, val_every=3))
    after = run_files(tmp_path / "run")
    assert after == before


def test_a_scheduled_rate_is_not_extended_and_changes_nothing(tmp_path: Path, tiny_config) -> None:
    """A cosine rate is a function of max_steps: a raised budget would resume the finished run at
    a higher rate than it ended with, not as if it had had that budget from the start."""
    train(tiny_config(tmp_path / "run", max_steps=6, val_every=3, lr_schedule="cosine"))
    before = run_files(tmp_path / "run")
    with pytest.raises(ConfigError, match="cosine learning rate is scheduled over that budget, so it "
                                          "cannot be extended to 9: choose another --out"):
        train(tiny_config(tmp_path / "run", max_steps=9, val_every=3, lr_schedule="cosine"))
    assert run_files(tmp_path / "run") == before


def test_concurrent_runs_get_their_own_folders(tmp_path: Path, tiny_config) -> None:
    config = write_config(tmp_path / "c.yaml", tiny_config)
    procs = [start(config, tmp_path) for _ in range(3)]
    for proc in procs:
        assert proc.wait(timeout=300) == 0, proc.stderr.read()[-2000:]
    runs = sorted((tmp_path / "runs").iterdir())
    assert len(runs) == 3 and all(r.name.startswith("copy-ntm-seed0-") for r in runs)
    ids = set()
    for run in runs:
        assert yaml.safe_load((run / "config.yaml").read_text())["out"] == f"runs/{run.name}"
        assert torch.load(run / "checkpoints/last.ckpt", weights_only=False)["global_step"] == 6
        assert len(pd.read_csv(run / "test_metrics.csv")) == 2
        ids.add((run / "wandb_id").read_text())
    assert len(ids) == 3


def test_a_folder_in_use_is_refused_and_left_intact(tmp_path: Path, tiny_config) -> None:
    config = write_config(tmp_path / "c.yaml", tiny_config, max_steps=400, val_every=100)
    first = start(config, tmp_path, "--out", "shared")
    wait_for(tmp_path / "shared" / "config.yaml", first)
    second = subprocess.run([NTMBENCH, "train", "--config", str(config), "--out", "shared"],
                            cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=120)
    assert second.returncode == 2
    assert second.stderr.strip() == (
        "ntmbench: error: shared is in use by another ntmbench process; wait for it to finish "
        "or choose another --out")
    assert first.wait(timeout=300) == 0, first.stderr.read()[-2000:]
    assert torch.load(tmp_path / "shared/checkpoints/last.ckpt", weights_only=False)["global_step"] == 400
    assert len(list((tmp_path / "shared").glob("wandb/offline-run-*"))) == 1


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--config", "missing.yaml"], "cannot read config missing.yaml"),
        (["--config", "bad.yaml"], "config bad.yaml is not valid YAML"),
        (["--config", "list.yaml"], "must hold a mapping of RunConfig fields"),
        (["--config", "unknown.yaml"], "unknown.yaml: unknown key 'epochs'; valid keys: task"),
        (["-t", "max_length=-1"], "copy: max_length must be an integer >= 1 (got -1)"),
        (["-m", "memory_size=0"], "memory_size must be an integer >= 1 (got 0)"),
        (["--batch-size", "0"], "--batch-size must be an integer >= 1 (got 0)"),
        (["--lr", "-1"], "--lr must be > 0 (got -1.0)"),
        (["--max-steps", "2.5"], "argument --max-steps: invalid int value: '2.5'"),
        (["--preset", "huge"], "huge"),
        (["--task", "sort"], "argument --task: invalid choice: 'sort' (choose from 'copy', "),
        (["--model", "dnc"], "argument --model: invalid choice: 'dnc' (choose from 'ntm', 'ntm-ff', 'lstm')"),
        (["-m", "colour=red"], "unknown option 'colour' for NTMConfig"),
        (["--accelerator", "tpu"], "argument --accelerator: invalid choice: 'tpu' (choose from 'cpu', 'gpu', 'cuda', 'auto')"),
    ],
)
def test_bad_input_exits_2_with_one_line_and_writes_nothing(
    tmp_path: Path, monkeypatch, capsys, args, fragment
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.yaml").write_text("task: [copy\n")
    (tmp_path / "list.yaml").write_text("- copy\n")
    (tmp_path / "unknown.yaml").write_text("epochs: 3\n")
    before = sorted(p.name for p in tmp_path.iterdir())
    assert main(["train", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ntmbench: error: ") and err.count("\n") == 1
    assert fragment in err
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no runs/ folder, nothing


def test_damaged_checkpoint_is_one_line_and_kept(tmp_path: Path, tiny_config, capsys) -> None:
    train(tiny_config(tmp_path / "run", max_steps=3))
    ckpt = tmp_path / "run/checkpoints/last.ckpt"
    ckpt.write_bytes(ckpt.read_bytes()[:100])  # a truncated file, as a full disk might leave
    config = write_config(tmp_path / "c.yaml", tiny_config, max_steps=3)
    assert main(["train", "--config", str(config), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot resume from" in err and "move it away" in err
    assert len(ckpt.read_bytes()) == 100
