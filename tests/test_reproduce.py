"""`ntmbench reproduce`: plans load and validate fast; the whole chain runs in the slow tier."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pandas as pd
import pytest
import yaml

from bench.cli import main
from bench.plan import load_plan, planned_runs, select, training_jobs
from bench.reproduce import results_markdown
from core.config import ConfigError, RunConfig
from datamodules.registry import TASKS
from models.registry import MODELS
from test_training import wandb_records


@pytest.mark.parametrize("name", ["paper", "quick"])
def test_shipped_plans_build_every_run(name: str, tmp_path: Path) -> None:
    runs = planned_runs(load_plan(name), tmp_path, {})
    configs = [r.config.resolved() for r in runs]  # presets apply: every run is buildable
    assert len({c.out for c in configs}) == len(configs)
    if name == "paper":
        assert {c.task for c in configs} == set(TASKS) and {c.model for c in configs} == set(MODELS)
        assert all(len({c.seed for c in configs if (c.task, c.model) == key}) >= 3
                   for key in {(c.task, c.model) for c in configs})
        for task in TASKS:  # the plan's claim: no model of a task sees more sequences than the
            # LSTM baseline (all see as many, but associative recall's NTM: 30,000 of 96,000, v12)
            budgets = {c.model: c.max_steps * c.batch_size for c in configs if c.task == task}
            assert budgets["lstm"] == max(budgets.values()), (task, budgets)
    else:
        assert {(c.task, c.model) for c in configs} == {("copy", "ntm"), ("copy", "lstm")}


def test_a_plan_trains_seed_by_seed(tmp_path: Path) -> None:
    runs = planned_runs(load_plan(str(tiny_plan(tmp_path / "tiny.yaml"))), tmp_path, {})
    assert [(r.config.task, r.config.seed, r.config.model) for r in runs] == [
        ("copy", 0, "lstm"), ("copy", 0, "ntm"), ("copy", 0, "ntm-ff"),  # the plan's model order
        ("copy", 1, "lstm"), ("copy", 1, "ntm"), ("copy", 1, "ntm-ff"),
        ("associative_recall", 0, "lstm"), ("associative_recall", 0, "ntm"),
        ("associative_recall", 0, "ntm-ff")]


def test_bad_plans_are_one_line_errors(tmp_path: Path, capsys) -> None:
    with pytest.raises(ConfigError, match="no plan 'nope'; choose one of: paper, quick"):
        load_plan("nope")
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"name": "b", "version": 1, "experiments": [
        {"task": "copy", "seeds": [0], "models": {"ntm": {"max_stepz": 3}}}]}))
    assert main(["reproduce", "--plan", str(bad), "--out", str(tmp_path / "runs")]) == 2
    assert ("plan bad.yaml: experiments[0].models.ntm: unknown key 'max_stepz'; valid keys: preset"
            in capsys.readouterr().err)
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("plan, message", [
    ({"defaultz": {}}, "plan bad.yaml: unknown key 'defaultz'; valid keys: name, version, defaults, experiments"),
    ({"V2": {"optimizer": "adam"}}, "plan bad.yaml: unknown key 'V2'; valid keys: name"),
    ({"defaults": {"lr": 1e-3, "batchsize": 4}}, "plan bad.yaml: defaults: unknown key 'batchsize'"),
    ({"defaults": {"lr": "fast"}}, "experiments[0].models.ntm: option 'lr' must be float or None"),
    ({"experiments": [{"task": "copy", "seeds": [0], "models": {"ntm": None}, "seed": 1}]},
     "plan bad.yaml: experiments[0]: unknown key 'seed'; valid keys: task, seeds, defaults, models"),
    ({"experiments": [{"task": "copy", "seeds": [0], "defaults": {"seed": 3}, "models": {"ntm": None}}]},
     "experiments[0].defaults: seed cannot be set here"),
    ({"experiments": [{"task": "copy", "seeds": "0", "models": {"ntm": None}}]},
     "experiments[0].seeds: expected a non-empty list of integers"),
])
def test_every_level_of_a_plan_is_checked(plan: dict, message: str, tmp_path: Path, capsys) -> None:
    # one schema: a plan's top level, its defaults, an experiment and its models are RunConfig
    # fields or the plan's own keys; anything else is one line naming the key and the valid ones
    bad = tmp_path / "bad.yaml"
    base = {"name": "b", "version": 1, "experiments": [
        {"task": "copy", "seeds": [0], "models": {"ntm": {"max_steps": 200}}}]}
    bad.write_text(yaml.safe_dump(base | plan))
    assert main(["reproduce", "--plan", str(bad), "--out", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "runs").exists()


def test_an_experiments_defaults_apply_to_its_models(tmp_path: Path) -> None:
    plan = tmp_path / "p.yaml"
    plan.write_text("name: p\nversion: 1\ndefaults: {lr: 1e-4, batch_size: 2}\nexperiments:\n"
                    "  - task: copy\n    seeds: [0]\n    defaults: {batch_size: 8, max_steps: 400}\n"
                    "    models: {ntm: {max_steps: 600}, lstm: null}\n")
    runs = planned_runs(load_plan(str(plan)), tmp_path, {})
    assert [(r.config.model, r.config.lr, r.config.batch_size, r.config.max_steps) for r in runs] == [
        ("ntm", 1e-4, 8, 600), ("lstm", 1e-4, 8, 400)]


def tiny_plan(path: Path) -> Path:
    small = {"ntm": {"memory_size": 8, "memory_width": 4, "controller_size": 8},
             "ntm-ff": {"memory_size": 8, "memory_width": 4, "controller_size": 8},
             "lstm": {"layers": 1, "size": 8}}
    path.write_text(yaml.safe_dump({
        "name": "tiny", "version": 1,
        "defaults": {"preset": "none", "optimizer": "adam", "lr": 0.01, "batch_size": 4,
                     "max_steps": 4, "val_every": 2, "checkpoint_every": 2, "val_batches": 2,
                     "val_batch_size": 4, "test_batch_size": 4, "progress": False},
        "experiments": [
            {"task": "copy", "seeds": [0, 1],
             "models": {m: {"model_options": o, "task_options": {"max_length": 3, "test_lengths": [5, 8]}}
                        for m, o in small.items()}},
            {"task": "associative_recall", "seeds": [0],
             "models": {m: {"model_options": o, "task_options": {"max_items": 3, "test_items": [4]}}
                        for m, o in small.items()}},
        ]}))
    return path


@pytest.mark.slow
def test_plan_runs_end_to_end_and_a_rerun_skips_finished_runs(tmp_path: Path, capsys) -> None:
    plan = tiny_plan(tmp_path / "tiny.yaml")
    argv = ["reproduce", "--plan", str(plan), "--out", str(tmp_path / "runs"),
            "--report", str(tmp_path / "report")]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.count(": training") == 7 and "report:" in out  # copy: a population per NTM
    results = pd.read_csv(tmp_path / "report" / "results.csv")
    assert set(results["task"]) == {"copy", "associative_recall"}
    assert set(results["variant"]) == {"ntm", "ntm-ff", "lstm"}
    figures = {p.name for p in (tmp_path / "report" / "figures").iterdir()}
    assert {"learning_curves.png", "generalization.png", "memory_copy.png"} <= figures
    assert (tmp_path / "report" / "index.html").exists()
    table = re.sub(" +", " ", (tmp_path / "report" / "results.md").read_text())  # cells unpadded
    assert "**copy**" in table and "**associative_recall**" in table
    assert "| ntm-ff | " in table and "| len_005 | len_008 |" in table and "| 16 seq | adam 0.01, batch 4 |" in table
    assert "| validation cost, last | len_005 |" in table
    (report_run,) = [r["run"] for r in wandb_records(tmp_path / "report") if r["type"] == "run"]
    assert report_run["job_type"] == "report" and report_run["run_group"] == "tiny-v1"
    assert report_run["tags"] == ["report", "associative_recall", "copy", "reproduce", "tiny-v1"]

    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "9 of 9 runs done already, skipped" in out and ": training" not in out


def test_tasks_and_jobs_pick_and_parallelize_runs(tmp_path: Path, capsys) -> None:
    # --tasks trains one task's runs only; --workers 2 trains them two at a time in worker processes
    plan = tiny_plan(tmp_path / "tiny.yaml")
    argv = ["reproduce", "--plan", str(plan), "--out", str(tmp_path / "runs"), "--no-report",
            "--tasks", "associative_recall"]
    assert main(argv + ["--workers", "2"]) == 0
    out = capsys.readouterr().out
    threads = max(1, (os.cpu_count() or 1) // 2)
    assert "plan tiny v1: 3 runs" in out and f"2 runs at a time, {threads} torch thread(s) each" in out
    assert out.count(": finished in") == 3 and "copy" not in out
    trained = sorted(p.parent.name for p in (tmp_path / "runs/tiny").glob("*/test_metrics.csv"))
    assert trained == sorted(f"associative_recall-{m}-seed0" for m in ("lstm", "ntm", "ntm-ff"))
    assert main(argv) == 0  # the same runs, one at a time now: all finished already
    assert "3 of 3 runs done already, skipped" in capsys.readouterr().out


def test_tasks_models_and_seeds_pick_runs(tmp_path: Path) -> None:
    runs = planned_runs(load_plan(str(tiny_plan(tmp_path / "tiny.yaml"))), tmp_path, {})
    picked = select(runs, tasks=["copy"], models=["ntm", "lstm"], seeds=["1"])
    assert [(r.config.task, r.config.seed, r.config.model) for r in picked] == [
        ("copy", 1, "lstm"), ("copy", 1, "ntm")]
    assert select(runs) == runs
    assert [r.config.task for r in select(runs, seeds=["1"])] == ["copy"] * 3


@pytest.mark.parametrize("flags, message", [
    (["--tasks", "copy,sorting"], "--tasks sorting: not in this plan; choose from: copy, associative_recall"),
    (["--models", "ntm,gru"], "--models gru: not in this plan; choose from: lstm, ntm, ntm-ff"),
    (["--tasks", "associative_recall", "--seeds", "1"], "--seeds 1: not in this plan; choose from: 0"),
    (["--seeds", ","], "--seeds '': not in this plan; choose from: 0, 1"),
    (["--workers", "0"], "ntmbench reproduce: argument --workers: must be an integer >= 1 (got '0')"),
    (["--workers", "2", "--devices", "2"],
     "--workers 2 with --devices 2: a run on several devices trains alone; give --workers 1 (or --devices 1)"),
])
def test_bad_tasks_or_jobs_are_one_line_errors(flags, message, tmp_path: Path, capsys) -> None:
    plan = tiny_plan(tmp_path / "tiny.yaml")
    assert main(["reproduce", "--plan", str(plan), "--out", str(tmp_path / "runs")] + flags) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"ntmbench: error: {message}"
    assert not (tmp_path / "runs").exists()


def children(pid: int) -> set[int]:
    """Process ids whose parent is `pid` (Linux /proc)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


@pytest.mark.slow  # 60-110 s of process start-ups: the fast tier stays under 10 min on 2 cores
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads workers from Linux /proc")
def test_a_terminated_parallel_plan_stops_its_workers_and_a_rerun_completes(tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys
    import time

    import wandb

    # a W&B service in this process (as after any in-process run) puts its token in os.environ,
    # which subprocesses inherit: workers must not attach to it, or a killed worker's run stays
    # "in use" there and the rerun fails
    wandb.init(mode="offline", dir=str(tmp_path)).finish()
    plan = tiny_plan(tmp_path / "tiny.yaml")
    text = yaml.safe_load(plan.read_text())
    text["defaults"] |= {"max_steps": 200, "checkpoint_every": 10, "val_every": 100}  # cut short
    plan.write_text(yaml.safe_dump(text))
    cmd = [str(Path(sys.executable).parent / "ntmbench"), "reproduce", "--plan", str(plan), "--out",
           str(tmp_path / "runs"), "--no-report", "--tasks", "associative_recall", "--workers", "2"]
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    end = time.monotonic() + 120
    while len(list((tmp_path / "runs/tiny").glob("*/checkpoints/last.ckpt"))) < 2:
        assert proc.poll() is None and time.monotonic() < end, proc.stdout.read()[-2000:]
        time.sleep(0.1)
    workers = children(proc.pid)
    assert len(workers) >= 2
    tree = workers | {pid for worker in workers for pid in children(worker)}  # + their W&B services
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 2
    assert proc.stdout.read().rstrip().endswith(  # one line, no traceback
        "\nntmbench: error: interrupted; rerun the same command to go on (finished runs are kept, "
        "the others resume from their last checkpoint)")

    def running(pid: int) -> bool:
        try:
            return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
        except OSError:
            return False

    end = time.monotonic() + 30  # a W&B service exits by itself once its worker is gone
    while any(running(pid) for pid in tree) and time.monotonic() < end:
        time.sleep(0.2)
    alive = {pid for pid in tree if running(pid)}
    assert not alive, f"processes {alive} outlived their parent"
    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    assert len(list((tmp_path / "runs/tiny").glob("*/test_metrics.csv"))) == 3


def test_a_non_finite_loss_ends_the_plan_with_one_line(tmp_path: Path, capsys, monkeypatch) -> None:
    import bench.reproduce
    from models.system import NonFiniteLossError

    def diverge(config, **_):
        raise NonFiniteLossError("loss is nan at step 3; lower --lr or --clip")

    monkeypatch.setattr(bench.reproduce, "train", diverge)
    plan = tiny_plan(tmp_path / "tiny.yaml")
    assert main(["reproduce", "--plan", str(plan), "--out", str(tmp_path / "runs"), "--no-report",
                 "--tasks", "associative_recall", "--models", "lstm"]) == 2
    err = capsys.readouterr().err
    run = tmp_path / "runs/tiny/associative_recall-lstm-seed0"
    assert err == f"ntmbench: error: {run}: loss is nan at step 3; lower --lr or --clip\n"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads processes from Linux /proc")
def test_a_run_on_two_devices_trains_once_stops_cleanly_and_resumes(tmp_path: Path) -> None:
    # DDP starts its second rank by rerunning the command line of the process that trains: a run
    # on two devices trains in a process of its own, so the plan's loop and its report run once
    import signal
    import subprocess
    import sys
    import time

    import wandb

    wandb.init(mode="offline", dir=str(tmp_path)).finish()  # this process's W&B service: not the child's
    plan = tiny_plan(tmp_path / "tiny.yaml")
    text = yaml.safe_load(plan.read_text())
    text["defaults"] |= {"max_steps": 200, "checkpoint_every": 10, "val_every": 100}
    plan.write_text(yaml.safe_dump(text))
    cmd = [str(Path(sys.executable).parent / "ntmbench"), "reproduce", "--plan", str(plan), "--out",
           str(tmp_path / "runs"), "--report", str(tmp_path / "report"), "--tasks", "associative_recall",
           "--models", "lstm", "--accelerator", "cpu", "--devices", "2", "--strategy", "ddp"]
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    run = tmp_path / "runs/tiny/associative_recall-lstm-seed0"
    end = time.monotonic() + 120
    while not (run / "checkpoints/last.ckpt").exists():
        assert proc.poll() is None and time.monotonic() < end, proc.stdout.read()[-2000:]
        time.sleep(0.1)
    tree = children(proc.pid)
    tree |= {pid for child in tree for pid in children(child)}  # its ranks and W&B service
    assert len(tree) >= 2
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 2
    out = proc.stdout.read()
    assert out.rstrip().endswith("\nntmbench: error: interrupted; rerun the same command to go on "
                                 "(finished runs are kept, the others resume from their last checkpoint)")
    assert out.count("): training") == 1

    def running(pid: int) -> bool:
        try:
            return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
        except OSError:
            return False

    end = time.monotonic() + 30
    while any(running(pid) for pid in tree) and time.monotonic() < end:
        time.sleep(0.2)
    assert not {pid for pid in tree if running(pid)}, "a rank outlived the interrupted plan"
    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    out = again.stdout + again.stderr
    assert out.count("): training") == 1 and out.count("): finished in") == 1
    assert out.count("\nreport: ") == 1 and "(resuming at step " in out
    assert [p.name for p in (run / "checkpoints").iterdir()] == ["last.ckpt"]
    assert torch_step(run / "checkpoints/last.ckpt") == 200
    assert "| lstm " in (tmp_path / "report/results.md").read_text()


def torch_step(checkpoint: Path) -> int:
    import torch

    return torch.load(checkpoint, weights_only=False)["global_step"]


def run_folders(tmp_path: Path, task: str, recipes: dict[str, dict]) -> pd.DataFrame:
    """One run folder per variant with the config.yaml it was trained with, as the report's runs."""
    rows = []
    for variant, recipe in recipes.items():
        run = tmp_path / "runs" / f"{task}-{variant}-seed0"
        run.mkdir(parents=True)
        cfg = RunConfig.from_dict({"task": task, "model": variant, "out": str(run), **recipe})
        (run / "config.yaml").write_text(yaml.safe_dump(cfg.resolved().to_dict()))
        rows.append({"task": task, "variant": variant, "source": str(run)})
    return pd.DataFrame(rows)


def cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def test_the_results_table_describes_each_run_as_it_was_trained(tmp_path: Path) -> None:
    # parameters, budget and recipe come from each run's own config.yaml: here an earlier plan's
    # recipe (adam 0.001, batch 32, 1,500 steps), not the current paper plan's
    results = pd.DataFrame([
        {"task": "priority_sort", "variant": variant, "seeds": 3, "converged": 0,
         "seqs_to_converge": float("inf"), "seqs_seen": 48000.0, "label": "in_030_out_024",
         "size": 30.0, "cost_bits": 188.9, "bit_errors": 85.66, "bit_errors_min": 84.22,
         "bit_errors_max": 85.9, "val_cost_bits": val, "val_cost_bits_min": low,
         "val_cost_bits_max": high} for variant, val, low, high in
        [("ntm", 122.0, 120.5, 125.25), ("lstm", 123.0, 123.0, 123.0), ("ntm-ff", 0.01, 0.0, 0.04)]])
    results.to_csv(tmp_path / "results.csv", index=False)
    earlier = {"optimizer": "adam", "lr": 0.001, "batch_size": 32, "max_steps": 1500, "val_every": 100}
    runs = run_folders(tmp_path, "priority_sort", {"ntm": earlier, "lstm": earlier,
                                                  "ntm-ff": {**earlier, "max_steps": 3000}})
    table = results_markdown(tmp_path / "results.csv", runs)
    rows = table.splitlines()
    assert cells(rows[2]) == ["model", "parameters", "seeds", "trained on", "recipe",
                              "sequences to < 0.1 bit errors", "validation cost, last", "in_030_out_024"]
    assert cells(rows[4]) == ["ntm", "215,048", "3", "48,000 seq", "adam 0.001, batch 32",
                              "not reached (0/3 seeds)", "122.0 (120.5-125.2)", "188.9 / 85.66 (84.22-85.90)"]
    assert cells(rows[5])[3:] == ["48,000 seq", "adam 0.001, batch 32", "not reached (0/3 seeds)",
                                  "123.0", "188.9 / 85.66 (84.22-85.90)"]  # every seed alike: no range
    assert cells(rows[6])[3] == "96,000 seq"  # its own run's budget
    assert cells(rows[6])[6] == "0.0"  # alike to 0.1: no "(0.0-0.0)"
    assert cells(rows[7]) == ["paper (approx.)", "", "", "", "", "",
                              "NTM ~20, LSTM ~50 (figure 16, long training)", ""]
    assert all(row.count("|") == rows[2].count("|") for row in rows[2:])  # every row has every column


def test_the_optimal_estimators_row_shows_its_validation_cost(tmp_path: Path) -> None:
    # n-grams: the optimal estimator's validation cost in the validation column, its test costs
    # under the test lengths
    results = pd.DataFrame([
        {"task": "ngrams", "variant": "ntm", "seeds": 3, "converged": 0, "seqs_to_converge": float("inf"),
         "seqs_seen": 32000.0, "label": label, "size": size, "cost_bits": cost, "bit_errors": 150.0,
         "bit_errors_min": 150.0, "bit_errors_max": 150.0, "optimal_cost_bits": optimal,
         "val_cost_bits": 178.0, "val_cost_bits_min": 177.5, "val_cost_bits_max": 179.75,
         "val_optimal_cost_bits": 132.04} for label, size, cost, optimal in
        [("len_0400", 400.0, 345.5, 234.3), ("len_1000", 1000.0, 904.1, 573.84)]])
    results.to_csv(tmp_path / "results.csv", index=False)
    runs = run_folders(tmp_path, "ngrams", {"ntm": {"max_steps": 1000, "batch_size": 32, "val_every": 100}})
    rows = results_markdown(tmp_path / "results.csv", runs).splitlines()
    assert cells(rows[-1]) == ["optimal estimator", "", "", "", "", "", "132.0", "234.3 / -", "573.8 / -"]
    assert cells(rows[-2])[-3:] == ["178.0 (177.5-179.8)", "345.5 / 150.00", "904.1 / 150.00"]
    assert rows[-1].count("|") == rows[2].count("|")


def test_a_plans_seeds_train_as_one_population_unless_told_not_to(tmp_path: Path, capsys) -> None:
    plan = tiny_plan(tmp_path / "tiny.yaml")
    argv = ["reproduce", "--plan", str(plan), "--out", str(tmp_path / "runs"), "--no-report",
            "--tasks", "copy"]
    assert main([*argv, "--models", "ntm"]) == 0
    out = capsys.readouterr().out
    assert "[1/1] copy / ntm / seeds 0,1 (4 steps, one population): finished in" in out
    root = tmp_path / "runs/tiny"
    assert yaml.safe_load((root / "populations/copy-ntm-seeds0-1/population.yaml").read_text()) == {
        "members": [str(root / "copy-ntm-seed0"), str(root / "copy-ntm-seed1")]}
    for seed in (0, 1):  # each member's folder is the plan's run folder for its seed
        assert pd.read_csv(root / f"copy-ntm-seed{seed}/test_metrics.csv")["seed"].tolist() == [seed] * 2
        records = wandb_records(root / f"copy-ntm-seed{seed}")
        (run,) = [r["run"] for r in records if r["type"] == "run"]
        version = yaml.safe_load(plan.read_text())["version"]
        assert run["run_group"] == f"tiny-v{version}/copy/ntm" and f"tiny-v{version}" in run["tags"]
        assert run["config"]["update"]["plan"] == f"tiny-v{version}"
    assert main([*argv, "--models", "ntm"]) == 0
    assert "2 of 2 runs done already, skipped" in capsys.readouterr().out
    assert main([*argv, "--models", "ntm-ff", "--no-population"]) == 0
    out = capsys.readouterr().out
    assert out.count(": finished in") == 2 and "population" not in out
    assert not (root / "populations/copy-ntm-ff-seeds0-1").exists()


def test_a_run_started_alone_resumes_alone(tmp_path: Path) -> None:
    runs = [r for r in planned_runs(load_plan(str(tiny_plan(tmp_path / "tiny.yaml"))), tmp_path, {})
            if r.config.task == "copy"]
    jobs = training_jobs(runs, tmp_path / "tiny")
    # the NTMs' seeds as populations; the LSTM's alone (its population would loop over members)
    assert sorted((j.population.name, [r.config.seed for r in j.runs]) for j in jobs
                  if j.population) == [("copy-ntm-ff-seeds0-1", [0, 1]), ("copy-ntm-seeds0-1", [0, 1])]
    assert sorted((r.config.model, r.config.seed) for j in jobs if not j.population
                  for r in j.runs) == [("lstm", 0), ("lstm", 1)]
    started = next(r for r in runs if r.config.model == "ntm").config.run_dir / "checkpoints/last.ckpt"
    started.parent.mkdir(parents=True)
    started.write_bytes(b"")  # copy / ntm / seed 0 began alone: both ntm seeds now train alone
    jobs = training_jobs(runs, tmp_path / "tiny")
    alone = [(r.config.model, r.config.seed) for j in jobs if j.population is None for r in j.runs]
    assert sorted(alone) == [("lstm", 0), ("lstm", 1), ("ntm", 0), ("ntm", 1)] and len(jobs) == 5
    assert [j.population is None for j in training_jobs(runs, tmp_path / "tiny", together=False)] == [True] * 6
