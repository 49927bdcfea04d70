"""What a new user hits first (issue #17's bugs), each pinned by a test that fails without its fix."""

from __future__ import annotations

import stat
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
import yaml

from bench.cli import main
from core.config import ConfigError, RunConfig
from core.files import write_text
from core.footprint import check_fits, footprint
from core.train import train
from models.system import NonFiniteLossError

TINY_FLAGS = ["--task", "copy", "--preset", "none", "-m", "memory_size=8", "-m", "memory_width=4",
              "-m", "controller_size=8", "-t", "max_length=3", "-t", "test_lengths=[5]",
              "--max-steps", "2", "--val-every", "2", "--checkpoint-every", "2", "--batch-size", "2",
              "--val-batches", "1", "--val-batch-size", "2", "--test-batch-size", "2",
              "--optimizer", "adam", "--lr", "0.01"]


def test_train_without_out_prints_the_folder_it_wrote(tmp_path, monkeypatch, capsys) -> None:
    # 1. the printed folder is the unique one the run wrote, not runs/copy-ntm-seed0
    monkeypatch.chdir(tmp_path)
    assert main(["train", *TINY_FLAGS, "--no-progress"]) == 0
    (written,) = list((tmp_path / "runs").iterdir())
    assert written.name.startswith("copy-ntm-seed0-")
    out = capsys.readouterr().out
    assert f"({Path('runs') / written.name})" in out.replace("\n", "")


def test_display_settings_do_not_make_another_run(tmp_path, capsys) -> None:
    # 2. rerun from the run's own config.yaml, with --no-progress and another W&B project: a resume
    run = tmp_path / "run"
    assert main(["train", *TINY_FLAGS, "--out", str(run)]) == 0
    before = (run / "config.yaml").read_text()
    assert main(["train", "--config", str(run / "config.yaml"), "--out", str(run), "--no-progress",
                 "--wandb-project", "elsewhere"]) == 0
    assert (run / "config.yaml").read_text() == before  # what the run was started with
    capsys.readouterr()
    # a setting that changes the result still makes it another run
    assert main(["train", "--config", str(run / "config.yaml"), "--out", str(run), "--lr", "0.5"]) == 2
    assert "holds a run with another config (differs in lr)" in capsys.readouterr().err


def test_written_files_get_the_umask_mode(tmp_path) -> None:
    # 3. 0644 under the usual umask 022 (mkstemp made them 0600)
    import os

    old = os.umask(0o022)
    try:
        write_text(tmp_path / "a.txt", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]  # no temporary file left


def test_run_files_are_readable_by_others(tmp_path, tiny_config) -> None:
    import os

    old = os.umask(0o022)
    try:
        train(tiny_config(tmp_path / "run"))
    finally:
        os.umask(old)
    for name in ("config.yaml", "test_metrics.csv"):
        assert stat.S_IMODE((tmp_path / "run" / name).stat().st_mode) == 0o644, name


def test_evaluate_never_overwrites_the_runs_own_results(tmp_path, tiny_config, capsys) -> None:
    # 4. a test_on: best run's test_metrics.csv holds best.ckpt's table; evaluating last.ckpt
    # writes beside it under a name that says which checkpoint it scored
    run = tmp_path / "run"
    train(tiny_config(run, max_steps=6, val_every=3, test_on="best"))
    own = (run / "test_metrics.csv").read_bytes()
    assert main(["evaluate", "--checkpoint", str(run / "checkpoints/last.ckpt")]) == 0
    assert (run / "test_metrics.csv").read_bytes() == own
    assert (run / "test_metrics.last.csv").is_file()
    assert "test_metrics.last.csv" in capsys.readouterr().out.replace("\n", "")
    # nor when it is asked to
    assert main(["evaluate", "--checkpoint", str(run / "checkpoints/last.ckpt"),
                 "--out", str(run / "test_metrics.csv")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "never overwrites" in err
    assert (run / "test_metrics.csv").read_bytes() == own


def test_a_budget_below_one_validation_is_refused(tmp_path, capsys) -> None:
    # 5. it would train without a validation and log nothing
    with pytest.raises(ConfigError, match=r"max_steps \(5\) < val_every \(200\)"):
        RunConfig(max_steps=5)
    assert main(["train", "--max-steps", "5", "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "lower --val-every or raise --max-steps" in err
    assert not (tmp_path / "run").exists()


def test_an_internal_value_error_keeps_its_traceback(monkeypatch) -> None:
    # 7. only the project's own input errors are one line; a ValueError from inside is a bug
    import bench.train_command

    def broken(cfg):
        raise ValueError("an internal bug")

    monkeypatch.setattr(bench.train_command, "train", broken)
    with pytest.raises(ValueError, match="an internal bug"):
        main(["train", "--max-steps", "200"])


def test_a_bad_model_option_is_still_one_line(tmp_path, capsys) -> None:
    assert main(["train", "-m", "heads=0", "--out", str(tmp_path / "run")]) == 2
    assert capsys.readouterr().err == "ntmbench: error: heads must be an integer >= 1 (got 0)\n"


def test_a_size_that_cannot_fit_is_refused_before_anything_is_allocated(tmp_path, capsys) -> None:
    # 9. before: Lightning's banner, then the kernel killed the process (exit 137)
    assert main(["train", "-m", "memory_size=200000000", "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "memory_size=200000000 x memory_width=20" in err and "TB for training" in err
    assert not (tmp_path / "run").exists()


def test_the_footprint_is_a_lower_bound_that_scales_with_the_memory() -> None:
    small = footprint(RunConfig(model_options={"memory_size": 64}).resolved())
    large = footprint(RunConfig(model_options={"memory_size": 128}).resolved())
    # copy: at most 20 + 20 + 1 steps; BPTT keeps B x T x N x M floats of memory at the least
    assert small.steps == 41
    assert large.train_bytes - small.train_bytes >= 16 * 41 * 64 * 20 * 4
    # the paper's copy NTM fits, and what is refused names what it needs and what there is
    assert check_fits(RunConfig().resolved(), available=10**9).bytes < 10**8
    with pytest.raises(ConfigError, match=r"needs at least about 8\.\d+ MB .* has 1 MB available"):
        check_fits(RunConfig().resolved(), available=10**6)


def test_predict_refuses_inputs_that_are_not_finite(tmp_path, tiny_config, capsys) -> None:
    # 10. a NaN or an infinity in the inputs is refused, as a wrong width is
    train(tiny_config(tmp_path / "run"))
    inputs = np.zeros((1, 5, 9), dtype=np.float32)
    inputs[0, 2, 3], inputs[0, 3, 1] = np.nan, np.inf
    np.savez(tmp_path / "in.npz", inputs=inputs)
    assert main(["predict", "--checkpoint", str(tmp_path / "run/checkpoints/last.ckpt"),
                 "--inputs", str(tmp_path / "in.npz"), "--out", str(tmp_path / "out.npz")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "2 NaN or infinite value(s)" in err
    assert not (tmp_path / "out.npz").exists()


class PoisonGradient(pl.Callback):
    """After the backward pass of step `at`, one weight's gradient is NaN (the loss is finite)."""

    def __init__(self, at: int) -> None:
        self.at, self.system = at, None

    def on_after_backward(self, trainer, pl_module) -> None:
        self.system = pl_module
        if trainer.global_step == self.at:
            next(pl_module.net.parameters()).grad.fill_(float("nan"))


def test_a_non_finite_gradient_stops_before_it_reaches_the_weights(tmp_path, tiny_config) -> None:
    # the stop keeps the last good checkpoint, and the weights never see the NaN
    poison = PoisonGradient(at=3)
    with pytest.raises(NonFiniteLossError, match="non-finite gradient at step 3; lower the learning"):
        train(tiny_config(tmp_path / "run", checkpoint_every=2, max_steps=6, val_every=3),
              callbacks=[poison])
    assert all(torch.isfinite(p).all() for p in poison.system.parameters())
    ckpt = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=False)
    assert ckpt["global_step"] == 2
    assert all(torch.isfinite(v).all() for v in ckpt["state_dict"].values())


def test_a_config_file_with_a_misspelled_key_is_one_line(tmp_path, capsys) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("task: copy\nlrr: 1e-4\n")
    assert main(["train", "--config", str(config), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{config}: unknown key 'lrr'; valid keys: task, model" in err


def test_yaml_numbers_are_floats_everywhere(tmp_path) -> None:
    # one rule: 1e-4 is a float in a train --config file (YAML 1.1 readers make it a string)
    from bench.options import load_config_file

    config = tmp_path / "c.yaml"
    config.write_text("lr: 1e-4\n")
    assert load_config_file(str(config)) == {"lr": 1e-4}
    assert RunConfig.from_dict(load_config_file(str(config))).lr == 1e-4
    assert yaml.safe_load("lr: 1e-4") == {"lr": "1e-4"}  # what the one loader exists for
