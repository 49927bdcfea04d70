"""A quiet console: `ntmbench train` prints its start line, its progress bar, one W&B line and
its test table, and nothing of the libraries' (tips, notices, deprecation warnings) unless
--verbose. Run as processes, so that every warning and log line reaches the console as a user's
would (pytest's own capture of warnings would hide them)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from test_first_use import TINY_FLAGS

NTMBENCH = Path(sys.executable).parent / "ntmbench"
BAR = re.compile(r"^copy/ntm seed 0: +\d+%\|")  # the run's tqdm bar, each of its redraws
CHATTER = ("GPU available", "TPU available", "Tip", "litlogger", "litmodels", "deprecated",
           "Deprecat", "weights_only", "Warning", "exists and is not empty", "wandb:")


def console(*flags: str) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("WANDB_SILENT", "PYTHONWARNINGS")}
    done = subprocess.run([str(NTMBENCH), "train", *TINY_FLAGS, *flags], capture_output=True,
                          text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    return [line for line in re.split(r"[\r\n]", done.stdout + done.stderr) if line.strip()]


def test_a_train_run_prints_its_start_its_bar_its_wandb_line_and_its_table(tmp_path: Path) -> None:
    run = tmp_path / "run"
    lines = console("--out", str(run), "--max-steps", "4")
    assert lines[0] == f"copy/ntm seed 0: 1,112 parameters on CPU, 1 thread -> {run}"
    bars = [line for line in lines if BAR.match(line)]
    assert bars and bars[-1].startswith("copy/ntm seed 0: 100%|") and " 4/4 [" in bars[-1]
    assert "val/bit_errors=" in bars[-1] and "v_num" not in bars[-1]
    rest = [line for line in lines[1:] if not BAR.match(line)]
    assert rest[0].startswith(f"W&B: offline run {run}/wandb/offline-run-")
    top = next(i for i, line in enumerate(rest) if line.startswith("┏"))  # the table, its title
    assert "copy / ntm: test per length" in " ".join(part.strip() for part in rest[1:top])  # above
    assert [line[0] for line in rest[top:]] == ["┏", "┃", "┡", "│", "└"] and "len_005" in rest[top + 3]
    assert not [line for line in lines if any(word in line for word in CHATTER)]

    # a resumed run: its bar counts from where it resumed, of the run's real total, and
    # Lightning's warning about the CSV folder (whose rows the run keeps) stays off the console
    lines = console("--out", str(run), "--max-steps", "6")
    assert lines[:2] == [f"{run}: budget raised from 4 to 6 steps; training on from its last checkpoint",
                         f"copy/ntm seed 0: 1,112 parameters on CPU, 1 thread -> {run} "
                         f"(resuming at step 4 of 6)"]
    assert [line for line in lines if BAR.match(line)][-1].startswith("copy/ntm seed 0: 100%|")
    assert all("/6 [" in line for line in lines if BAR.match(line))
    assert not [line for line in lines if any(word in line for word in CHATTER)]


def test_a_resumed_population_keeping_best_checkpoints_stays_quiet(tmp_path: Path) -> None:
    """Resuming writes into checkpoint folders that hold best.ckpt, which Lightning warns about."""
    run = tmp_path / "run"
    for steps in ("4", "6"):
        lines = console("--out", str(run), "--max-steps", steps, "--val-every", "2",
                        "--test-on", "best", "--seeds", "0,1")
        assert not [line for line in lines if any(word in line for word in CHATTER)], lines
    assert lines[0] == f"{run}/seed0: budget raised from 4 to 6 steps; training on from its last checkpoint"


def test_verbose_brings_the_libraries_lines_back(tmp_path: Path) -> None:
    lines = console("--out", str(tmp_path / "run"), "--no-progress", "--verbose")
    assert "GPU available: False, used: False" in lines
