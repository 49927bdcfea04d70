"""`ntmbench demo` (make demo) end to end, as a user runs it: its console (at most 40 lines besides
the progress bars), its report and its table. Minutes of training: the slow tier."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

NTMBENCH = Path(sys.executable).parent / "ntmbench"
BAR = re.compile(r"^copy/(ntm|lstm) seeds? [0-9,]+: +\d+%\|")


@pytest.mark.slow
def test_the_demo_says_what_it_does_in_at_most_forty_lines(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("WANDB_SILENT", "OMP_NUM_THREADS")}
    done = subprocess.run([str(NTMBENCH), "demo", "--out", str(tmp_path / "runs"), "--report",
                           str(tmp_path / "report")], capture_output=True, text=True, timeout=3600,
                          env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [line for line in re.split(r"[\r\n]", done.stdout + done.stderr) if line.strip()]
    said = [line for line in lines if not BAR.match(line)]
    assert len(said) <= 40, "\n".join(said)
    assert said[0].startswith("plan quick v") and "plan quick: 4/4 runs, " in "\n".join(said)
    assert any(line.startswith("┃ length ┃ ntm seed 0 ┃ ntm seed 1 ┃ ntm seed 2 ┃ lstm seed 0 ┃")
               for line in said)
    assert any(re.match(r"^NTM seeds below 0.1 bit errors per sequence on the training lengths: "
                        r"\d of 3$", line) for line in said)
    assert (tmp_path / "report" / "index.html").exists()
    assert not [line for line in said if "Warning" in line or "Tip" in line or "wandb:" in line]
