"""`ntmbench sample`: the file it writes, and one-line errors that write nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from bench.cli import main
from datamodules.registry import build_task


def run(capsys, *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().err


def test_writes_the_batch_and_its_shape(tmp_path: Path, capsys) -> None:
    out = tmp_path / "rc.npz"
    code, _ = run(capsys, "sample", "--task", "repeat_copy", "--length", "3", "--repeats", "2",
                  "--batch-size", "4", "--seed", "7", "--out", str(out))
    assert code == 0
    data = np.load(out)
    assert data["inputs"].shape == (4, 3 + 2 + 6 + 1, 10)
    assert data["targets"].shape == (4, 12, 9)
    assert data["mask"].dtype == np.bool_ and data["mask"].sum() == 4 * 7
    assert int(data["length"]) == 3 and int(data["repeats"]) == 2
    assert str(data["task"]) == "repeat_copy"
    expected = build_task("repeat_copy").sample(torch.Generator().manual_seed(7), 4, length=3, repeats=2)
    assert np.array_equal(data["inputs"], expected["inputs"].numpy())


def test_test_split_defaults_to_its_first_length(tmp_path: Path, capsys) -> None:
    out = tmp_path / "c.npz"
    assert run(capsys, "sample", "--task", "copy", "--split", "test", "--batch-size", "2", "--out", str(out))[0] == 0
    data = np.load(out)
    assert int(data["length"]) == 30 and data["inputs"].shape == (2, 61, 9)


def test_train_split_draws_from_the_training_range(tmp_path: Path, capsys) -> None:
    lengths = set()
    for seed in range(12):
        out = tmp_path / f"c{seed}.npz"
        run(capsys, "sample", "--task", "copy", "--seed", str(seed), "--out", str(out))
        lengths.add(int(np.load(out)["length"]))
    assert lengths <= set(range(1, 21)) and len(lengths) > 3


def test_ngrams_file_holds_optimal(tmp_path: Path, capsys) -> None:
    out = tmp_path / "n.npz"
    assert run(capsys, "sample", "--task", "ngrams", "--length", "50", "--batch-size", "3", "--out", str(out))[0] == 0
    data = np.load(out)
    assert data["optimal"].shape == (3, 50, 1)
    assert np.all((data["optimal"] > 0) & (data["optimal"] < 1))


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["--task", "kopy"], "argument --task: invalid choice: 'kopy' (choose from 'copy', 'repeat_copy', "
                            "'associative_recall', 'ngrams', 'priority_sort')"),
        (["--task", "associative_recall", "--items", "1"], "items must be an integer >= 2"),
        (["--task", "copy", "--length", "0"], "length must be an integer >= 1"),
        (["--task", "priority_sort", "--n-in", "4", "--n-out", "5"], "n_out must be an integer in 1..4"),
        (["--task", "copy", "--items", "3"], "copy takes --length, not --items"),
        (["--task", "copy", "--colour", "red"], "valid options: --batch-size, --help"),
        (["--task", "copy", "--batch-size", "0"], "argument --batch-size: must be an integer >= 1"),
        (["--task", "copy", "--split", "dev"], "choose from 'train', 'val', 'test'"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(tmp_path: Path, capsys, argv, fragment) -> None:
    out = tmp_path / "x.npz"
    code, err = run(capsys, "sample", *argv, "--out", str(out))
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("ntmbench: error: ")
    assert fragment in err
    assert list(tmp_path.iterdir()) == []


def test_console_script_error_has_no_traceback(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "ntmbench"
    out = tmp_path / "x.npz"
    proc = subprocess.run([str(script), "sample", "--task", "copy", "--length", "0", "--out", str(out)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "ntmbench: error: copy: length must be an integer >= 1 (got 0)"
    assert not out.exists()
