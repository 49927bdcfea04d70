"""Training, checkpoints, evaluation and prediction, end to end on tiny runs."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from bench.cli import main
from core.config import ConfigError, RunConfig
from core.train import datamodule_for, train
from datamodules.registry import TASKS
from models.metrics import sequence_metrics
from models.registry import MODELS, parameter_count
from models.system import NonFiniteLossError, SequenceSystem

ROOT = Path(__file__).resolve().parents[1]

SMALL = {"ntm": {"memory_size": 8, "memory_width": 4, "controller_size": 8},
         "ntm-ff": {"memory_size": 8, "memory_width": 4, "controller_size": 8, "heads": 2},
         "lstm": {"layers": 2, "size": 8}}
SHORT = {"copy": {"max_length": 3}, "repeat_copy": {"max_length": 2, "max_repeats": 2},
         "associative_recall": {"max_items": 3}, "ngrams": {"train_length": 12},
         "priority_sort": {"train_n_in": 5, "train_n_out": 3}}


def test_metrics_exact_values() -> None:
    # one sequence, 2 scored steps of 2 bits; logits chosen so p = 0.5 or sigmoid(+-ln 3) = 0.75/0.25
    logits = torch.tensor([[[0.0, 0.0], [math.log(3), -math.log(3)], [5.0, 5.0]]])
    targets = torch.tensor([[[1.0, 0.0], [1.0, 1.0], [0.0, 0.0]]])
    mask = torch.tensor([[True, True, False]])
    m = sequence_metrics(logits, targets, mask)
    # bits: -log2(.5) * 2 + -log2(.75) + -log2(.25) = 2 + 0.4150375 + 2
    assert m["cost_bits"].item() == pytest.approx(4.4150375, abs=1e-6)
    # p = .5 predicts 0, so bit (0, 0) is wrong; (1, 1) predicts 0 for a 1: 2 of 4 bits wrong
    assert m["bit_errors"].item() == 2.0
    assert m["seq_acc"].item() == 0.0
    assert m["bit_acc"].item() == pytest.approx(0.5)


@pytest.mark.parametrize("model", list(MODELS))
@pytest.mark.parametrize("task", list(TASKS))
def test_every_model_trains_on_every_task(task: str, model: str) -> None:
    cfg = RunConfig.from_dict(dict(
        task=task, model=model, preset="none", model_options=SMALL[model], task_options=SHORT[task],
        optimizer="adam", lr=1e-2, batch_size=3, max_steps=3, val_every=3, out="unused",
        progress=False)).resolved()
    system = SequenceSystem(cfg.to_dict())
    before = [p.detach().clone() for p in system.parameters()]
    datamodule = datamodule_for(cfg, system)
    losses = []

    class Record(pl.Callback):
        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            losses.append(outputs["loss"].item())

    trainer = pl.Trainer(max_steps=3, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False,
                         limit_val_batches=0, callbacks=[Record()])
    trainer.fit(system, datamodule=datamodule)
    assert len(losses) == 3 and all(math.isfinite(x) and x > 0 for x in losses)
    assert any(not torch.equal(a, b) for a, b in zip(before, system.parameters()))


def wandb_records(run_dir: Path) -> list[dict]:
    """The records of the run's offline .wandb file, read back with `wandb leet inspect`. The
    file is complete once it holds the exit record (the writer may lag `finish()` by a little)."""
    (wandb_file,) = run_dir.glob("wandb/offline-run-*/run-*.wandb")
    exe = Path(sys.executable).parent / "wandb"
    for _ in range(50):
        out = subprocess.run([str(exe), "leet", "inspect", "--json", str(wandb_file)],
                             capture_output=True, text=True, timeout=120, check=True).stdout
        records = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        if any(r["type"] == "exit" for r in records):
            return records
        time.sleep(0.2)
    raise AssertionError(f"{wandb_file} never got its exit record")


def history_values(records: list[dict], key: str) -> list[float]:
    return [r["history"]["item"][key] for r in records
            if r["type"] == "history" and key in r["history"]["item"]]


def test_train_writes_run_folder_and_wandb_holds_the_metrics(tmp_path: Path, tiny_config) -> None:
    cfg = tiny_config(tmp_path / "run")
    result = train(cfg)
    rows, run = result.test, tmp_path / "run"
    assert result.run_dir == run and result.metrics["val/cost_bits"] > 0
    assert yaml.safe_load((run / "config.yaml").read_text())["model_options"]["memory_size"] == 8
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)["global_step"] == 6
    assert list(rows["label"]) == ["len_006", "len_009"] and list(rows["length"]) == [6, 9]
    on_disk = pd.read_csv(run / "test_metrics.csv")
    assert on_disk["cost_bits"].tolist() == pytest.approx(rows["cost_bits"].tolist())

    csv = pd.read_csv(run / "csv" / "metrics.csv")
    records = wandb_records(run)
    (run_record,) = [r for r in records if r["type"] == "run"]
    config = run_record["run"]["config"]["update"]
    assert config["task"] == "copy" and config["model_options"]["memory_size"] == 8
    assert run_record["run"]["tags"] == ["copy", "ntm"]
    # filed as one experiment's seeds: group task/model (a plan or study goes in front), job train
    assert run_record["run"]["run_group"] == "copy/ntm" and run_record["run"]["job_type"] == "train"
    assert config["parameters"] == parameter_count(SequenceSystem(cfg.resolved().to_dict()).net)
    assert config["git_commit"] == subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, text=True,
                                                  capture_output=True).stdout.strip()
    assert config["hardware"]["accelerator"] == "cpu"
    # the same values the CSV logger saw are in the W&B file
    val_csv = csv["val/cost_bits"].dropna().tolist()
    assert len(val_csv) == 2
    assert history_values(records, "val/cost_bits") == pytest.approx(val_csv, rel=1e-6)
    test_wandb = history_values(records, "test/len_009/bit_errors")
    assert test_wandb == pytest.approx([rows.set_index("label").loc["len_009", "bit_errors"]])
    seqs = history_values(records, "train/sequences")
    assert seqs and seqs[-1] <= 6 * 4 and all(s % 4 == 0 for s in seqs)
    # the per-length results as one table, with the size and the checkpoint tested, and its plots
    (table_file,) = run.glob("wandb/offline-run-*/files/media/table/test/results_*.table.json")
    table = json.loads(table_file.read_text())
    got = pd.DataFrame(table["data"], columns=table["columns"])
    assert {"label", "length", "size", "checkpoint", "cost_bits", "bit_errors", "seq_acc",
            "bit_acc"} <= set(got.columns)
    assert got["label"].tolist() == ["len_006", "len_009"] and got["size"].tolist() == [6, 9]
    assert got["checkpoint"].tolist() == ["last", "last"]  # test_on: last
    assert got["cost_bits"].tolist() == pytest.approx(on_disk["cost_bits"].tolist())
    plots = {key: value for r in records if r["type"] == "config"
             for key, value in r["config"]["update"].items() if key.startswith("_wandb.visualize.")}
    for metric in ("cost_bits", "bit_errors"):
        fields = plots[f"_wandb.visualize.test/{metric}_vs_size"]["panel_config"]["fieldSettings"]
        assert fields["x"] == "size" and fields["y"] == metric


def test_wandb_charts_against_sequences_seen_and_keeps_the_minima(tmp_path: Path, tiny_config,
                                                                   monkeypatch) -> None:
    import core.wandb_run

    records = wandb_records(train(tiny_config(tmp_path / "run")).run_dir)
    metrics = {m["metric"].get("name") or m["metric"]["glob_name"]: m["metric"]
               for m in records if m["type"] == "metric"}
    for pattern in ("train/*", "val/*", "val/cost_bits", "val/bit_errors"):
        assert metrics[pattern]["step_metric"] == "train/sequences", pattern
    assert metrics["val/cost_bits"]["summary"] == {"min": True} == metrics["val/bit_errors"]["summary"]
    val_rows = [r["history"]["item"] for r in records
                if r["type"] == "history" and "val/cost_bits" in r["history"]["item"]]
    # every validation row carries the x-axis: sequences seen by then (steps 3 and 6, batch 4)
    assert [row["train/sequences"] for row in val_rows] == [12, 24]
    summary = {}
    for r in records:
        if r["type"] == "summary":
            summary.update(r["summary"]["update"])
    assert summary["val/cost_bits"] == {"min": min(row["val/cost_bits"] for row in val_rows)}
    assert "converged_at_sequences" not in summary  # tiny runs stay far above 0.1 bit errors

    # below the threshold at the first validation: its sequences, kept after a resume
    monkeypatch.setattr(core.wandb_run, "CONVERGED_BELOW", 1e9)
    train(tiny_config(tmp_path / "converged", max_steps=3))
    monkeypatch.setattr(core.wandb_run, "CONVERGED_BELOW", 0.0)  # no later point converges
    train(tiny_config(tmp_path / "converged", max_steps=6))  # extended from its checkpoint
    ckpt = torch.load(tmp_path / "converged" / "checkpoints" / "last.ckpt", weights_only=False)
    assert ckpt["callbacks"]["SequencesSeen"] == {"converged": {"run": 12.0}}
    for offline_run in (tmp_path / "converged").glob("wandb/offline-run-*"):
        summaries = [r["summary"]["update"] for r in records_of(offline_run) if r["type"] == "summary"]
        assert [u["converged_at_sequences"] for u in summaries if "converged_at_sequences" in u][-1] == 12


def records_of(offline_run: Path) -> list[dict]:
    """The records of one offline W&B run folder (a resumed run has one per start)."""
    (wandb_file,) = offline_run.glob("run-*.wandb")
    exe = Path(sys.executable).parent / "wandb"
    out = subprocess.run([str(exe), "leet", "inspect", "--json", str(wandb_file)],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def test_rerun_resumes_and_another_config_is_refused(tmp_path: Path, tiny_config) -> None:
    train(tiny_config(tmp_path / "run", max_steps=3))
    train(tiny_config(tmp_path / "run", max_steps=3))  # finished: nothing more to do
    ckpt = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=False)
    assert ckpt["global_step"] == 3 and ckpt["TaskDataModule"] == {"next_batch": 3}
    before = (tmp_path / "run" / "config.yaml").read_text()
    with pytest.raises(ConfigError, match="holds a run with another config .*lr"):
        train(tiny_config(tmp_path / "run", max_steps=3, lr=0.5))
    assert (tmp_path / "run" / "config.yaml").read_text() == before
    assert len(list((tmp_path / "run").glob("wandb/offline-run-*"))) == 2  # same id, resumed
    run_id = (tmp_path / "run" / "wandb_id").read_text().strip()
    assert all(run_id in p.name for p in (tmp_path / "run").glob("wandb/offline-run-*"))


def test_non_finite_loss_stops_with_the_step_and_keeps_the_checkpoint(
    tmp_path: Path, tiny_config, monkeypatch
) -> None:
    forward = SequenceSystem.forward

    def poisoned(self, inputs, return_weights=False):
        out = forward(self, inputs, return_weights)
        return out * float("nan") if self.training and self.global_step >= 4 else out

    monkeypatch.setattr(SequenceSystem, "forward", poisoned)
    with pytest.raises(NonFiniteLossError, match="non-finite loss at step 4; lower the learning rate"):
        train(tiny_config(tmp_path / "run", checkpoint_every=2))
    ckpt = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=False)
    assert ckpt["global_step"] == 4
    assert all(torch.isfinite(v).all() for v in ckpt["state_dict"].values())


def test_evaluate_and_predict_rebuild_from_the_checkpoint(tmp_path: Path, tiny_config, capsys) -> None:
    train(tiny_config(tmp_path / "run"))
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    assert main(["evaluate", "--checkpoint", str(ckpt), "--out", str(tmp_path / "eval.csv")]) == 0
    rows = pd.read_csv(tmp_path / "eval.csv")
    assert rows["label"].tolist() == ["len_006", "len_009"]
    assert {"cost_bits", "bit_errors", "seq_acc", "bit_acc", "length"} <= set(rows.columns)
    trained = pd.read_csv(tmp_path / "run" / "test_metrics.csv")
    assert rows["cost_bits"].tolist() == pytest.approx(trained["cost_bits"].tolist(), rel=1e-5)
    # its own W&B run, beside the CSV it wrote, in the group of the run it scored
    records = wandb_records(tmp_path)
    (run,) = [r["run"] for r in records if r["type"] == "run"]
    assert (run["job_type"], run["run_group"], run["display_name"]) == ("evaluate", "copy/ntm",
                                                                       "run-evaluate-last")
    assert run["config"]["update"]["checkpoint"] == str(ckpt) and run["tags"] == ["copy", "ntm", "evaluate"]
    (table_file,) = tmp_path.glob("wandb/offline-run-*/files/media/table/test/results_*.table.json")
    table = json.loads(table_file.read_text())
    assert [row[table["columns"].index("checkpoint")] for row in table["data"]] == ["last", "last"]
    assert (tmp_path / "run" / "wandb_group").read_text() == "copy/ntm\n"

    batch = tmp_path / "in.npz"
    assert main(["sample", "--task", "copy", "--length", "5", "--batch-size", "2", "--out", str(batch)]) == 0
    assert main(["predict", "--checkpoint", str(ckpt), "--inputs", str(batch),
                 "--out", str(tmp_path / "pred.npz")]) == 0
    pred = np.load(tmp_path / "pred.npz")
    assert pred["outputs"].shape == (2, 11, 8)
    assert np.all((pred["outputs"] > 0) & (pred["outputs"] < 1))
    assert pred["read_weights"].shape == (2, 11, 1, 8) and pred["write_weights"].shape == (2, 11, 1, 8)
    assert np.allclose(pred["read_weights"].sum(-1), 1, atol=1e-5)
    capsys.readouterr()

    wide = tmp_path / "wide.npz"
    main(["sample", "--task", "repeat_copy", "--length", "2", "--repeats", "1", "--out", str(wide)])
    capsys.readouterr()
    assert main(["predict", "--checkpoint", str(ckpt), "--inputs", str(wide),
                 "--out", str(tmp_path / "bad.npz")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "expected (B, T, 9)" in err
    assert not (tmp_path / "bad.npz").exists()


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["evaluate", "--checkpoint", "nowhere.ckpt"], "checkpoint nowhere.ckpt not found"),
        (["train", "--model", "gru"], "argument --model: invalid choice: 'gru' (choose from 'ntm', "),
        (["train", "--task", "sorting"], "argument --task: invalid choice: 'sorting'"),
        (["train", "--batch-size", "0"], "--batch-size must be an integer >= 1"),
        (["train", "--batch-size", "many"], "argument --batch-size: invalid int value: 'many'"),
        (["train", "-m", "memory_size=0"], "memory_size must be an integer >= 1"),
        (["train", "-m", "colour=red"], "valid options: heads"),
        (["train", "--optimizer", "sgd"], "argument --optimizer: invalid choice: 'sgd' (choose from 'rmsprop', 'adam', 'rmsprop-centered')"),
    ],
)
def test_bad_train_input_is_one_line_and_writes_nothing(tmp_path: Path, capsys, argv, fragment) -> None:
    out = tmp_path / "run"
    extra = ["--out", str(out)] if argv[0] == "train" else []
    assert main(argv + extra) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and fragment in err
    assert not out.exists()


def test_unreadable_checkpoint_is_one_line(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "last.ckpt"
    bad.write_bytes(b"not a checkpoint")
    assert main(["evaluate", "--checkpoint", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot read checkpoint" in err


class Collapse(pl.Callback):
    """From step `after` on, every output bias is pushed to +30: the model then answers 1 for
    every bit, so every later validation costs far more than any earlier one."""

    def __init__(self, after: int) -> None:
        self.after = after

    def on_train_batch_end(self, trainer, module, *args) -> None:
        if trainer.global_step >= self.after:
            with torch.no_grad():
                module.net.output.bias.fill_(30.0)


def test_test_on_best_scores_the_checkpoint_with_the_lowest_validation_cost(tmp_path, tiny_config):
    from bench.checkpoint_commands import evaluate_command

    # best and last differ by construction: the weights collapse after step 7, so the
    # validations at steps 9 and 12 are the worst and best.ckpt is one of steps 3 or 6
    cfg = tiny_config(tmp_path / "run", max_steps=12, val_every=3, test_on="best")
    result = train(cfg, callbacks=[Collapse(after=7)])
    best = tmp_path / "run/checkpoints/best.ckpt"
    history = pd.read_csv(tmp_path / "run/csv/metrics.csv").dropna(subset=["val/cost_bits"])
    assert history["step"].tolist() == [2, 5, 8, 11]  # Lightning logs step - 1 at validation
    chosen = torch.load(best, weights_only=False)
    lowest = history.loc[history["val/cost_bits"].idxmin()]
    assert chosen["global_step"] == lowest["step"] + 1 in (3, 6)  # saved after that validation
    # the test rows are those of best.ckpt, not of the last weights
    assert evaluate_command(str(best), str(tmp_path / "best.csv")) == 0
    assert evaluate_command(str(tmp_path / "run/checkpoints/last.ckpt"), str(tmp_path / "last.csv")) == 0
    rows = result.test["cost_bits"].tolist()
    assert rows == pytest.approx(pd.read_csv(tmp_path / "best.csv")["cost_bits"].tolist(), rel=1e-6)
    last = pd.read_csv(tmp_path / "last.csv")["cost_bits"].tolist()
    assert all(b < l for b, l in zip(rows, last))  # the collapsed last weights score worse


def test_test_on_is_a_checked_option():
    from core.config import ConfigError, RunConfig

    with pytest.raises(ConfigError, match="test_on must be one of last, best"):
        RunConfig(test_on="lowest")


def test_a_run_prints_one_wandb_line_and_honours_the_mode(tmp_path: Path, capfd, monkeypatch) -> None:
    from bench.cli import main
    from test_first_use import TINY_FLAGS

    monkeypatch.delenv("WANDB_SILENT", raising=False)  # quiet by itself, not by the environment
    assert main(["train", *TINY_FLAGS, "--out", str(tmp_path / "run"), "--no-progress"]) == 0
    out, err = capfd.readouterr()
    (folder,) = (tmp_path / "run").glob("wandb/offline-run-*")
    said = [line for line in (out + err).splitlines() if line.startswith(("wandb", "W&B"))]
    assert said == [f"W&B: offline run {folder}; upload it with: wandb sync {folder}"]  # no banner
    for where, flags in (("flag", ["--wandb-mode", "disabled"]), ("env", [])):
        if where == "env":
            monkeypatch.setenv("WANDB_MODE", "disabled")
        assert main(["train", *TINY_FLAGS, "--out", str(tmp_path / where), "--no-progress", *flags]) == 0
        assert not list((tmp_path / where).glob("wandb/*run-*")), where  # nothing logged
        out, err = capfd.readouterr()
        assert "W&B" not in out + err and "wandb:" not in out + err
    assert main(["train", *TINY_FLAGS, "--out", str(tmp_path / "bad"), "--wandb-mode", "loud"]) == 2
    assert "argument --wandb-mode: invalid choice: 'loud'" in capfd.readouterr().err
    assert not (tmp_path / "bad").exists()


def model_artifacts(run_dir: Path) -> list[list[str]]:
    """The files of each model artifact the run's W&B record holds."""
    return [[entry["path"] for entry in r["artifact"]["manifest"]["contents"]]
            for r in wandb_records(run_dir) if r["type"] == "artifact" and r["artifact"]["type"] == "model"]


def test_the_checkpoint_tested_is_the_runs_model_artifact(tmp_path: Path, tiny_config) -> None:
    assert RunConfig().wandb_log_model == "best"  # the default (tiny_config sets none)
    train(tiny_config(tmp_path / "last", wandb_log_model="best"))  # test_on last
    assert model_artifacts(tmp_path / "last") == [["last.ckpt"]]
    train(tiny_config(tmp_path / "best", test_on="best", wandb_log_model="best"))
    assert model_artifacts(tmp_path / "best") == [["best.ckpt"]]
    train(tiny_config(tmp_path / "all", test_on="best", wandb_log_model="all"))
    assert model_artifacts(tmp_path / "all") == [["best.ckpt", "last.ckpt"]]
    train(tiny_config(tmp_path / "none", wandb_log_model="none"))
    assert model_artifacts(tmp_path / "none") == []
    with pytest.raises(ConfigError, match="wandb_log_model"):
        tiny_config(tmp_path / "bad", wandb_log_model="some")
