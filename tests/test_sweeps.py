"""Optuna sweeps end to end: SQLite and PostgreSQL storage, workers, pruning, failures, resuming."""

from __future__ import annotations

import json
import math
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import optuna
import pytest
import torch
import yaml
from optuna.trial import TrialState

import postgres
from bench.cli import main
from datamodules.registry import TASKS
from models.registry import MODELS
from models.system import SequenceSystem
from sweeps.spec import SweepSpec
from sweeps.status import fail_reason
from sweeps.study import Sweep, claim, recover_interrupted
from sweeps.trial import worker_alive, worker_identity
from test_training import history_values, wandb_records

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "sweeps" / "smoke.yaml"
BIN = Path(sys.executable).parent
optuna.logging.set_verbosity(optuna.logging.WARNING)


def sweep_file(tmp_path: Path, name: str, **changes) -> Path:
    """The smoke sweep with top-level keys replaced (and `fixed` / `space` entries merged)."""
    spec = yaml.safe_load(SMOKE.read_text())
    for key, value in changes.items():
        if key in ("fixed", "space") and isinstance(value, dict):
            spec[key] = {**spec[key], **value}
        else:
            spec[key] = value
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def load(out: Path, study: str, storage: str | None = None) -> optuna.Study:
    return optuna.load_study(study_name=study, storage=storage or f"sqlite:///{out}/studies.db")


def sweep(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["sweep", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def merged_config(records: list[dict]) -> dict:
    """The run's W&B config: the one given at init, then every later update."""
    config = {}
    for r in records:
        if r["type"] == "run":
            config.update(r["run"]["config"]["update"])
        elif r["type"] == "config":
            config.update(r["config"]["update"])
    return config


def summary(records: list[dict]) -> dict:
    out = {}
    for r in records:
        if r["type"] == "summary":
            out.update(r["summary"]["update"])
    return out


def test_smoke_sweep_fills_sqlite_and_one_wandb_run_per_trial(tmp_path: Path, capsys) -> None:
    out = tmp_path / "sweeps"
    code, stdout, _ = sweep(capsys, "--config", str(SMOKE), "--out", str(out))
    assert code == 0
    study = load(out, "smoke")
    trials = study.get_trials()
    assert [t.number for t in trials] == [0, 1, 2]
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
    assert sum(t.state == TrialState.COMPLETE for t in trials) >= 2  # the first two cannot be pruned
    space = {"lr", "optimizer", "batch_size", "model_options.controller_size"}
    for t in trials:
        assert set(t.params) == space and 1e-3 <= t.params["lr"] <= 3e-2 and math.isfinite(t.value)
        run_dir = out / "smoke" / f"trial_{t.number:04d}"
        assert t.user_attrs["run_dir"] == str(run_dir)
        trained = yaml.safe_load((run_dir / "config.yaml").read_text())
        assert trained["lr"] == t.params["lr"] and trained["batch_size"] == t.params["batch_size"]
        assert trained["model_options"]["controller_size"] == t.params["model_options.controller_size"]
        assert len(list(run_dir.glob("wandb/offline-run-*"))) == 1
        records = wandb_records(run_dir)
        (run,) = [r["run"] for r in records if r["type"] == "run"]
        assert run["run_group"] == "smoke/copy/ntm" and run["job_type"] == "trial"
        assert {"copy", "ntm", "sweep", "smoke"} <= set(run["tags"])
        config = merged_config(records)
        assert config["trial"] == t.number and config["study"] == "smoke"
        assert config["lr"] == t.params["lr"] and config["model_options"]["memory_size"] == 8
        # the value Optuna holds is the last validation the run logged (pruned: where it stopped)
        assert history_values(records, "val/cost_bits")[-1] == pytest.approx(t.value, rel=1e-6)
        state = "complete" if t.state == TrialState.COMPLETE else "pruned"
        assert summary(records)["trial/state"] == state
        assert (run_dir / "test_metrics.csv").exists() == (state == "complete")
    assert f"best trial: {study.best_trial.number}, val/cost_bits = " in stdout

    records = wandb_records(out / "smoke" / "summary")
    (run,) = [r["run"] for r in records if r["type"] == "run"]
    assert run["run_group"] == "smoke/copy/ntm" and run["job_type"] == "sweep-summary"  # beside its trials
    assert summary(records)["best/number"] == study.best_trial.number
    assert summary(records)["best/value"] == pytest.approx(study.best_value)
    rows = (out / "smoke" / "trials.csv").read_text().splitlines()
    assert len(rows) == 4 and rows[0].startswith("number,state,value")

    assert main(["sweep-status", "--study", "smoke", "--out", str(out)]) == 0
    status = capsys.readouterr().out
    assert "3 trials (" in status and f"best trial: {study.best_trial.number}," in status
    code, stdout, _ = sweep(capsys, "--config", str(SMOKE), "--out", str(out))  # budget already met
    assert code == 0 and len(load(out, "smoke").trials) == 3


def test_two_workers_finish_the_total_with_nothing_lost_or_doubled(tmp_path: Path, capsys) -> None:
    config = sweep_file(tmp_path, "pair", trials=4, pruner={"name": "none"})
    out = tmp_path / "sweeps"
    code, _, err = sweep(capsys, "--config", str(config), "--out", str(out), "--workers", "2")
    assert code == 0, err
    trials = load(out, "pair").get_trials()
    assert [t.number for t in trials] == [0, 1, 2, 3]
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 4
    assert len({t.user_attrs["worker"]["pid"] for t in trials}) == 2  # both workers ran trials
    assert len({t.user_attrs["run_dir"] for t in trials}) == 4
    for t in trials:
        run_dir = Path(t.user_attrs["run_dir"])
        assert (run_dir / "test_metrics.csv").exists()
        assert len(list(run_dir.glob("wandb/offline-run-*"))) == 1
    assert sorted(p.name for p in (out / "pair").glob("trial_*")) == [f"trial_{n:04d}" for n in range(4)]


def test_a_pruner_stops_trials_at_a_training_step(tmp_path: Path, capsys) -> None:
    # every validation is above the threshold; n_warmup_steps counts training steps, so the report
    # at step 3 is let through and the one at step 6 prunes, before max_steps (9)
    config = sweep_file(tmp_path, "prune", trials=2, fixed={"max_steps": 9},
                        pruner={"name": "threshold", "upper": 1e-6, "n_warmup_steps": 4})
    out = tmp_path / "sweeps"
    code, stdout, _ = sweep(capsys, "--config", str(config), "--out", str(out))
    assert code == 0
    trials = load(out, "prune").get_trials()
    assert [t.state for t in trials] == [TrialState.PRUNED] * 2
    for t in trials:
        assert sorted(t.intermediate_values) == [3, 6]
        assert t.value == t.intermediate_values[6]
        assert t.user_attrs["pruned_reason"].startswith("pruned at step 6 (val/cost_bits = ")
        run_dir = Path(t.user_attrs["run_dir"])
        ckpt = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=False)
        assert ckpt["global_step"] == 6 and not (run_dir / "test_metrics.csv").exists()
        records = wandb_records(run_dir)
        assert summary(records)["trial/state"] == "pruned"
        assert [r["exit"]["exit_code"] for r in records if r["type"] == "exit"] == [0]
    assert "2 trials (2 pruned)" in stdout and "best trial: none complete yet" in stdout


def test_a_non_finite_loss_fails_the_trial_with_its_reason(tmp_path: Path, capsys, monkeypatch) -> None:
    forward = SequenceSystem.forward

    def poisoned(self, inputs, return_weights=False):
        out = forward(self, inputs, return_weights)
        return out * float("nan") if self.training and self.global_step >= 2 else out

    monkeypatch.setattr(SequenceSystem, "forward", poisoned)
    config = sweep_file(tmp_path, "nan", trials=2)
    out = tmp_path / "sweeps"
    code, stdout, _ = sweep(capsys, "--config", str(config), "--out", str(out))
    assert code == 0  # judged trials count toward the budget: the sweep finishes
    trials = load(out, "nan").get_trials()
    assert [t.state for t in trials] == [TrialState.FAIL] * 2
    for t in trials:
        assert t.user_attrs["fail_kind"] == "diverged"
        assert t.user_attrs["fail_reason"].startswith("non-finite loss at step 2; lower the learning rate")
        records = wandb_records(Path(t.user_attrs["run_dir"]))
        assert summary(records)["trial/state"] == "failed"
        assert [r["exit"]["exit_code"] for r in records if r["type"] == "exit"] == [1]
    assert "non-finite loss at step 2" in stdout and "2 trials (2 fail)" in stdout


def test_the_objective_is_the_best_validation_not_the_last(tmp_path: Path, capsys, monkeypatch) -> None:
    # the last validation spikes (every output answers 1): the trial's value is its best
    # validation, as `test_on: best` tests, while the pruner saw every running value
    forward = SequenceSystem.forward

    def spike(self, inputs, return_weights=False):
        out = forward(self, inputs, return_weights)
        return out * 0 + 30.0 if not self.training and self.global_step >= 9 else out

    monkeypatch.setattr(SequenceSystem, "forward", spike)
    config = sweep_file(tmp_path, "best", trials=1, pruner={"name": "none"},
                        fixed={"max_steps": 9, "val_every": 3, "checkpoint_every": 3})
    out = tmp_path / "sweeps"
    assert sweep(capsys, "--config", str(config), "--out", str(out))[0] == 0
    (trial,) = load(out, "best").get_trials()
    reported = [trial.intermediate_values[s] for s in sorted(trial.intermediate_values)]
    assert sorted(trial.intermediate_values) == [3, 6, 9] and reported[-1] > 100  # the spike
    assert trial.value == min(reported) and trial.value < reported[-1]
    records = wandb_records(Path(trial.user_attrs["run_dir"]))
    assert summary(records)["trial/value"] == pytest.approx(trial.value)


def test_a_sweep_killed_mid_trial_resumes_and_completes(tmp_path: Path, capsys) -> None:
    config = sweep_file(tmp_path, "kill", trials=2, pruner={"name": "none"},
                        fixed={"max_steps": 30, "val_every": 3, "checkpoint_every": 3})
    out = tmp_path / "sweeps"
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    log = tmp_path / "killed.log"
    with open(log, "w") as sink:
        proc = subprocess.Popen([str(BIN / "ntmbench"), "sweep", "--config", str(config),
                                 "--out", str(out)], cwd=tmp_path, env=env, stdout=sink,
                                stderr=subprocess.STDOUT, start_new_session=True)
    first = out / "kill" / "trial_0000"
    try:
        deadline = time.time() + 240
        while not (first / "checkpoints" / "last.ckpt").exists():  # mid-trial: its first checkpoint
            assert proc.poll() is None, f"the sweep ended before the kill:\n{log.read_text()[-3000:]}"
            assert time.time() < deadline, "no checkpoint in 240 s"
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    with sqlite3.connect(out / "studies.db") as db:
        assert db.execute("SELECT number, state FROM trials").fetchall() == [(0, "RUNNING")]

    code, stdout, err = sweep(capsys, "--config", str(config), "--out", str(out))
    assert code == 0, err
    assert "trial 0 was interrupted (its worker died); marked failed" in stdout
    trials = load(out, "kill").get_trials()
    assert [(t.number, t.state) for t in trials] == [
        (0, TrialState.FAIL), (1, TrialState.COMPLETE), (2, TrialState.COMPLETE)]
    assert trials[0].user_attrs["fail_kind"] == "interrupted"
    assert "died mid-trial" in trials[0].user_attrs["fail_reason"]
    assert not (first / "test_metrics.csv").exists()
    assert all((Path(t.user_attrs["run_dir"]) / "test_metrics.csv").exists() for t in trials[1:])


@pytest.fixture
def postgres_url():
    reason = postgres.unavailable()
    if reason:
        pytest.skip(f"PostgreSQL unavailable: {reason}")
    with postgres.fresh_database() as url:
        yield url


def test_two_workers_share_a_postgresql_study(tmp_path: Path, capsys, postgres_url: str) -> None:
    config = sweep_file(tmp_path, "shared", trials=3, pruner={"name": "none"})
    out = tmp_path / "sweeps"
    code, _, err = sweep(capsys, "--config", str(config), "--out", str(out), "--workers", "2",
                         "--storage", postgres_url)
    assert code == 0, err
    assert not (out / "studies.db").exists()
    trials = load(out, "shared", storage=postgres_url).get_trials()
    assert [(t.number, t.state) for t in trials] == [(n, TrialState.COMPLETE) for n in range(3)]
    assert all((Path(t.user_attrs["run_dir"]) / "test_metrics.csv").exists() for t in trials)
    assert main(["sweep-status", "--study", "shared", "--storage", postgres_url]) == 0
    assert "3 trials (3 complete)" in capsys.readouterr().out


BAD = [
    ({"spaces": {}}, [], "unknown key 'spaces'; valid keys:"),
    ({"fixed": {"lrate": 0.1}}, [], "fixed: unknown key 'lrate'; valid keys: task"),
    ({"fixed": {"max_steps": 2}}, [], "max_steps (2) < val_every (3): the run would end before"),
    ({"fixed": {"devices": 2}}, [], "fixed.devices must be 1"),
    ({"space": {"model_options.colour": [1, 2]}}, [], "space.model_options.colour: ntm has no option 'colour'"),
    ({"space": {"lr": {"low": 1e-3}}}, [], "space.lr: expected a list of choices or {low, high"),
    ({"space": {"lr": {"low": 0.0, "high": 1.0, "log": True}}}, [], "a log range needs low > 0"),
    ({"space": {"model_options.memory_size": [0, 8]}}, [], "memory_size must be an integer >= 1"),
    ({"metric": "val/loss"}, [], "metric must be one of val/cost_bits"),
    ({"pruner": {"name": "median", "n_startup": 1}}, [], "pruner median:"),
    ({"sampler": {"name": "grid"}}, [], "sampler.name must be one of tpe, random"),
    ({}, ["--storage", "mongodb://localhost/db"], "unknown storage scheme 'mongodb'"),
    ({}, ["--storage", "studies.db"], "is not a SQLAlchemy URL"),
    ({}, ["--storage", "postgresql+psycopg2://u:hidden@127.0.0.1:1/db"], "cannot reach storage postgresql"),
    ({}, ["--workers", "0"], "argument --workers: must be an integer >= 1 (got '0')"),
    ({}, ["--trials", "many"], "argument --trials: must be an integer >= 0 (got 'many')"),
]


@pytest.mark.parametrize("changes, argv, fragment", BAD)
def test_bad_sweep_input_is_one_line_and_writes_nothing(tmp_path: Path, capsys, changes, argv, fragment) -> None:
    config = sweep_file(tmp_path, "bad", **changes)
    out = tmp_path / "sweeps"
    code, _, err = sweep(capsys, "--config", str(config), "--out", str(out), *argv)
    assert code == 2 and err.count("\n") == 1 and fragment in err, err
    assert "hidden" not in err
    assert not out.exists()


def test_a_study_is_bound_to_its_sweep_file_and_its_folder(tmp_path: Path, capsys) -> None:
    out = tmp_path / "sweeps"
    assert sweep(capsys, "--config", str(SMOKE), "--out", str(out), "--trials", "0")[0] == 0
    assert load(out, "smoke").trials == []  # created, nothing run
    changed = sweep_file(tmp_path, "smoke", space={"lr": {"low": 1e-4, "high": 1e-2, "log": True}})
    code, _, err = sweep(capsys, "--config", str(changed), "--out", str(out))
    assert code == 2 and "study 'smoke'" in err and "was made from another sweep (differs in space)" in err
    (out / "studies.db").unlink()  # a new storage, but the old study's folder is still there
    code, _, err = sweep(capsys, "--config", str(SMOKE), "--out", str(out), "--trials", "0")
    assert code == 2 and "holds the trials of another study named 'smoke'" in err
    assert main(["sweep-status", "--study", "nope", "--out", str(out)]) == 2
    assert "no study 'nope' in sqlite:///" in capsys.readouterr().err
    assert main(["sweep-status", "--study", "x", "--out", str(tmp_path / "none")]) == 2
    assert "no sweep storage at" in capsys.readouterr().err
    assert not (tmp_path / "none").exists()


def test_a_claim_that_loses_a_race_is_recorded_as_surplus(tmp_path: Path, monkeypatch) -> None:
    spec = SweepSpec.load(SMOKE)
    storage = f"sqlite:///{tmp_path}/studies.db"
    study = optuna.create_study(study_name="race", storage=storage)
    sweep = Sweep(spec, storage, "race", tmp_path, trials=1)
    ask = optuna.Study.ask

    def another_machine_asks_first(self, *args, **kwargs):
        monkeypatch.setattr(optuna.Study, "ask", ask)
        optuna.load_study(study_name="race", storage=storage).ask()  # RUNNING elsewhere
        return ask(self, *args, **kwargs)

    monkeypatch.setattr(optuna.Study, "ask", another_machine_asks_first)
    assert claim(sweep, study) is None
    trials = study.get_trials()
    assert [t.state for t in trials] == [TrialState.RUNNING, TrialState.FAIL]
    assert trials[1].user_attrs["fail_kind"] == "surplus"
    assert claim(sweep, study) is None  # the budget is full: no new trial at all
    assert len(study.trials) == 2


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning", "ignore:Heartbeat of storage")
def test_trials_of_a_dead_worker_are_failed_here_at_once_and_elsewhere_by_heartbeat(tmp_path: Path) -> None:
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path}/studies.db", heartbeat_interval=1,
                                         grace_period=1)
    study = optuna.create_study(study_name="dead", storage=storage)
    gone = subprocess.Popen(["true"])
    gone.wait()
    here, there, alive = study.ask(), study.ask(), study.ask()
    here.set_user_attr("worker", {**worker_identity(), "pid": gone.pid})
    there.set_user_attr("worker", {**worker_identity(), "host": "elsewhere"})
    alive.set_user_attr("worker", worker_identity())
    for trial in (there, alive):
        storage.record_heartbeat(trial._trial_id)
    assert recover_interrupted(study) == [here.number]  # the other two have a fresh heartbeat
    time.sleep(2.5)  # `there` stops beating (its machine died); so does `alive`, whose worker is us
    recover_interrupted(study)
    states = {t.number: t.state for t in study.get_trials()}
    assert states == {0: TrialState.FAIL, 1: TrialState.FAIL, 2: TrialState.FAIL}
    reasons = [fail_reason(t) for t in study.get_trials()]
    assert reasons[0].startswith(f"interrupted: worker {socket.gethostname()}:{gone.pid} died mid-trial")
    assert reasons[1].startswith("interrupted: no heartbeat for")


def test_worker_liveness() -> None:
    me = worker_identity()
    assert worker_alive(me) is True
    done = subprocess.Popen(["true"])
    done.wait()
    assert worker_alive({**me, "pid": done.pid}) is False
    assert worker_alive({**me, "started": "1"}) is False  # the pid was reused by a later process
    assert worker_alive({**me, "host": "elsewhere"}) is None


def test_a_sweep_file_ships_for_every_task_and_model() -> None:
    for task in TASKS:
        for model in MODELS:
            spec = SweepSpec.load(ROOT / "sweeps" / f"{task}-{model}.yaml")  # loads and builds
            assert (spec.task, spec.model, spec.study) == (task, model, f"{task}-{model}")
            assert spec.base.preset == "paper" and spec.metric == "val/cost_bits"
            assert {"lr", "batch_size", "optimizer"} <= {p.name for p in spec.space}
    smoke = SweepSpec.load(SMOKE)
    assert smoke.trials <= 5 and smoke.base.max_steps <= 10
    assert SweepSpec.load(SMOKE).space[0].low == 1e-3  # `1e-3` is a float, not YAML 1.1's string


def test_optuna_dashboard_serves_the_storage(tmp_path: Path, capsys) -> None:
    out = tmp_path / "sweeps"
    assert sweep(capsys, "--config", str(SMOKE), "--out", str(out), "--trials", "0")[0] == 0
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([str(BIN / "optuna-dashboard"), f"sqlite:///{out}/studies.db",
                             "--host", "127.0.0.1", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=2) as r:
                    studies = json.loads(r.read())["study_summaries"]
                break
            except OSError:
                assert proc.poll() is None
                time.sleep(0.1)
        assert [s["study_name"] for s in studies] == ["smoke"]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/dashboard", timeout=5) as r:
            assert "<title>Optuna Dashboard</title>" in r.read().decode()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_set_overrides_the_files_fixed_settings(tmp_path: Path, capsys) -> None:
    spec = SweepSpec.load(SMOKE, {"max_steps": 9, "model_options.memory_width": 6,
                                  "task_options.max_length": 3})
    assert spec.base.max_steps == 9
    assert spec.base.model_options == {"memory_size": 8, "memory_width": 6}  # merged, not replaced
    assert spec.base.task_options == {"max_length": 3, "test_lengths": [6, 9]}
    assert SweepSpec.load(SMOKE).base.max_steps == 6  # the file itself unchanged
    out = tmp_path / "sweeps"
    code, _, err = sweep(capsys, "--config", str(SMOKE), "--out", str(out), "--set", "lr=0.1")
    assert code == 2 and err == ("ntmbench: error: --set lr: lr is searched (space.lr); edit the "
                                 "sweep file's space to change its range\n")
    code, _, err = sweep(capsys, "--config", str(SMOKE), "--out", str(out), "--set", "epochs=3")
    assert code == 2 and "unknown key 'epochs'" in err and not out.exists()
    code, _, err = sweep(capsys, "--config", str(SMOKE), "--out", str(out), "--set", "max_steps")
    assert code == 2 and "argument --set: expected KEY=VALUE, e.g. max_steps=200 (got 'max_steps')" in err
    # a study remembers its settings: an override is another study, under its own name
    assert sweep(capsys, "--config", str(SMOKE), "--out", str(out), "--trials", "0")[0] == 0
    code, _, err = sweep(capsys, "--config", str(SMOKE), "--out", str(out), "--set", "max_steps=9")
    assert code == 2 and "was made from another sweep (differs in fixed)" in err
    code, _, _ = sweep(capsys, "--config", str(SMOKE), "--out", str(out), "--set", "max_steps=9",
                       "--study", "smoke-longer", "--trials", "0")
    assert code == 0 and load(out, "smoke-longer").trials == []


def test_a_two_trial_sweep_prints_under_thirty_lines_besides_its_bars(tmp_path: Path) -> None:
    out = tmp_path / "sweeps"
    done = subprocess.run([str(BIN / "ntmbench"), "sweep", "--config", str(SMOKE), "--trials", "2",
                           "--out", str(out)], capture_output=True, text=True, timeout=300,
                          env={k: v for k, v in os.environ.items() if k != "WANDB_SILENT"})
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [line for line in re.split(r"[\r\n]", done.stdout + done.stderr) if line.strip()]
    said = [line for line in lines if not re.match(r"^copy/ntm seed 0: +\d+%\|", line)]
    assert len(said) <= 30, "\n".join(said)
    assert said[0].startswith("[smoke] copy / ntm: 2 trials, 1 worker(s)")
    assert "study smoke: 1/2 trials, " in "\n".join(said) and "study smoke: 2/2 trials, " in "\n".join(said)
    assert not [line for line in said if "optuna" in line.lower() or "A new study" in line]
