"""One vocabulary of flags: --batch-size, --workers and --accelerator wherever the idea appears,
enumerations as argparse choices, a help text on every flag, errors that name the flag, and each
old name a one-line error naming the new one."""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path

import pytest

from bench.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[1]


def flags(parser: argparse.ArgumentParser):
    for action in parser._actions:
        if action.option_strings and action.help != argparse.SUPPRESS:
            yield action


def test_every_flag_of_every_command_has_a_help_text() -> None:
    commands = build_parser().commands
    missing = [f"{name} {a.option_strings[0]}" for name, p in commands.items() for a in flags(p)
               if not a.help]
    assert missing == []


def test_one_name_per_idea() -> None:
    commands = build_parser().commands
    names = {name: {s for a in flags(p) for s in a.option_strings} for name, p in commands.items()}
    assert "--batch-size" in names["sample"] and "--batch-size" in names["train"]
    assert "--workers" in names["reproduce"] and "--workers" in names["sweep"]
    assert "--accelerator" in names["bench"] and "--accelerator" in names["train"]
    every = set().union(*names.values())
    assert not every & {"--batch", "--jobs", "--device"}
    choices = {a.dest: a.choices for p in commands.values() for a in flags(p) if a.choices}
    assert choices["accelerator"] and choices["task"] and choices["model"] and choices["wandb_mode"]
    assert build_parser().parse_args(["bench", "--accelerator", "gpu"]).accelerator == "gpu"


@pytest.mark.parametrize("argv, message", [
    (["sample", "--task", "copy", "--batch", "4", "--out", "x.npz"],
     "ntmbench sample: --batch is now --batch-size (e.g. --batch-size 4)"),
    (["reproduce", "--plan", "quick", "--jobs", "2"],
     "ntmbench reproduce: --jobs is now --workers (e.g. --workers 2)"),
    (["bench", "--device", "cuda"], "ntmbench bench: --device is now --accelerator (e.g. --accelerator gpu)"),
    (["bench", "--device"], "ntmbench bench: --device is now --accelerator"),
])
def test_an_old_flag_name_is_one_line_naming_the_new(argv, message, tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    assert capsys.readouterr().err == f"ntmbench: error: {message}\n"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("argv, message", [
    (["train", "--lr", "-1"], "ntmbench: error: --lr must be > 0 (got -1.0)"),
    (["train", "--momentum", "1.5"], "ntmbench: error: --momentum must be in [0, 1) (got 1.5)"),
    (["train", "--lr", "fast"],
     "ntmbench: error: ntmbench train: argument --lr: invalid float value: 'fast'"),
    (["train", "--test-on", "worst"], "ntmbench: error: ntmbench train: argument --test-on: invalid "
                                      "choice: 'worst' (choose from 'last', 'best')"),
])
def test_a_bad_value_names_its_flag(argv, message, tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    assert capsys.readouterr().err == message + "\n"


def test_the_makefiles_old_jobs_variable_names_workers() -> None:
    done = subprocess.run(["make", "-n", "reproduce", "JOBS=2"], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode != 0 and "JOBS is now WORKERS: make reproduce WORKERS=2" in done.stderr
    done = subprocess.run(["make", "-n", "reproduce", "WORKERS=2"], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0 and "--workers 2" in done.stdout


def test_online_without_a_wandb_login_is_one_line(tmp_path, capsys, monkeypatch) -> None:
    from test_first_use import TINY_FLAGS

    for name in ("WANDB_API_KEY", "WANDB_MODE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc: no stored key
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "wandb-config"))
    run = tmp_path / "run"
    assert main(["train", *TINY_FLAGS, "--no-progress", "--out", str(run), "--wandb-mode", "online"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("ntmbench: error: W&B: No API key configured")
    assert "--wandb-mode offline" in err
    # what was written is kept, and the same run goes on offline (the mode is a display setting)
    assert (run / "config.yaml").exists()
    assert main(["train", *TINY_FLAGS, "--no-progress", "--out", str(run), "--wandb-mode", "offline"]) == 0
    assert (run / "test_metrics.csv").exists()
