"""Sweep trials trained as one population (`ntmbench sweep --population K`): each is still its
own Optuna trial, folder and W&B run, with the numbers it gets alone; pruning or a NaN stops one
member, not the population."""

from __future__ import annotations

import math
from pathlib import Path

import optuna
import pandas as pd
import pytest
import torch
import yaml
from optuna.trial import TrialState

from models.population_system import PopulationSystem
from test_sweeps import load, merged_config, summary, sweep
from test_training import history_values, wandb_records

optuna.logging.set_verbosity(optuna.logging.WARNING)
SMOKE = Path(__file__).resolve().parents[1] / "sweeps" / "smoke.yaml"


def lr_sweep(tmp_path: Path, **changes) -> Path:
    """The smoke sweep searching the learning rate only (a random sampler, no pruner), with
    top-level keys replaced by `changes` (`fixed` entries merged)."""
    raw = yaml.safe_load(SMOKE.read_text())
    raw.update(sampler={"name": "random", "seed": 0}, pruner={"name": "none"},
               space={"lr": {"low": 1e-3, "high": 3e-2, "log": True}})
    raw["fixed"].update(changes.pop("fixed", {}))
    raw.update(changes)
    path = tmp_path / "lr.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def trials_of(out: Path) -> dict[int, optuna.trial.FrozenTrial]:
    return {t.number: t for t in load(out, "lr").get_trials()}


def test_trials_in_one_population_get_the_values_they_get_alone(tmp_path: Path, capsys) -> None:
    spec = lr_sweep(tmp_path)
    alone, together = tmp_path / "alone", tmp_path / "together"
    assert sweep(capsys, "--config", str(spec), "--out", str(alone))[0] == 0
    code, stdout, _ = sweep(capsys, "--config", str(spec), "--out", str(together), "--population", "3")
    assert code == 0
    solo, members = trials_of(alone), trials_of(together)
    assert sorted(members) == [0, 1, 2] and all(t.state == TrialState.COMPLETE for t in members.values())
    population = together / "lr" / "populations" / "trial_0000"
    listed = yaml.safe_load((population / "population.yaml").read_text())["members"]
    assert listed == [str(together / "lr" / f"trial_{n:04d}") for n in range(3)]
    assert (population / "last.ckpt").exists() and not (alone / "lr" / "populations").exists()
    for n, member in members.items():
        assert member.user_attrs["population"] == str(population)
        assert member.params == solo[n].params  # each trial's own sampled learning rate
        assert member.value == pytest.approx(solo[n].value, rel=2e-6)  # float32 round-off
        for label, cost in solo[n].user_attrs["test_cost_bits"].items():
            assert member.user_attrs["test_cost_bits"][label] == pytest.approx(cost, rel=2e-6)
        run_dir = together / "lr" / f"trial_{n:04d}"
        trained = yaml.safe_load((run_dir / "config.yaml").read_text())
        assert trained["lr"] == member.params["lr"] and trained["out"] == str(run_dir)
        records = wandb_records(run_dir)  # its own W&B run, in the study's group
        (run,) = [r["run"] for r in records if r["type"] == "run"]
        assert run["run_group"] == "lr/copy/ntm" and run["job_type"] == "trial"
        assert {"copy", "ntm", "sweep", "lr"} <= set(run["tags"])
        assert merged_config(records)["trial"] == n and merged_config(records)["study"] == "lr"
        assert summary(records)["trial/state"] == "complete"
        assert summary(records)["trial/value"] == pytest.approx(member.value)
        assert min(history_values(records, "val/cost_bits")) == pytest.approx(member.value, rel=1e-6)
        assert f"[lr] trial {n} complete: val/cost_bits = " in stdout
        solo_csv = pd.read_csv(alone / "lr" / f"trial_{n:04d}" / "test_metrics.csv")
        pd.testing.assert_frame_equal(pd.read_csv(run_dir / "test_metrics.csv"), solo_csv, rtol=2e-6)


def test_followers_share_the_first_trials_structure_and_sample_their_own_lr(tmp_path: Path,
                                                                          capsys) -> None:
    spec = lr_sweep(tmp_path, trials=5, space={
        "lr": {"low": 1e-3, "high": 3e-2, "log": True},
        "optimizer": ["adam", "rmsprop"], "model_options.controller_size": [8, 16]})
    assert sweep(capsys, "--config", str(spec), "--out", str(tmp_path), "--population", "3")[0] == 0
    trials = trials_of(tmp_path)
    assert sorted(trials) == [0, 1, 2, 3, 4]  # the budget holds: the last batch is two trials
    for leader, followers in ((0, (1, 2)), (3, (4,))):
        structure = {k: v for k, v in trials[leader].params.items() if k != "lr"}
        for n in followers:
            assert {k: v for k, v in trials[n].params.items() if k != "lr"} == structure
            assert trials[n].params["lr"] != trials[leader].params["lr"]
            assert trials[n].user_attrs["population"].endswith(f"trial_{leader:04d}")
    assert sorted(p.name for p in (tmp_path / "lr" / "populations").iterdir()) == ["trial_0000", "trial_0003"]


def test_pruning_or_a_nan_stops_one_member_and_the_others_keep_their_values(tmp_path: Path, capsys,
                                                                           monkeypatch) -> None:
    spec = lr_sweep(tmp_path, fixed={"max_steps": 9})
    baseline = tmp_path / "baseline"
    assert sweep(capsys, "--config", str(spec), "--out", str(baseline), "--population", "3")[0] == 0
    expected = trials_of(baseline)

    should_prune = optuna.Trial.should_prune
    monkeypatch.setattr(optuna.Trial, "should_prune",  # the pruner stops trial 1 at step 3
                        lambda self: self.number == 1 or should_prune(self))
    forward = PopulationSystem.forward

    def poisoned(self, inputs, *lengths):  # member 2's outputs turn NaN at step 6
        out = forward(self, inputs, *lengths)
        if self.training and self.global_step >= 6:
            out = torch.cat([out[:2], out[2:] * float("nan")])
        return out

    monkeypatch.setattr(PopulationSystem, "forward", poisoned)
    out = tmp_path / "stopped"
    code, stdout, _ = sweep(capsys, "--config", str(spec), "--out", str(out), "--population", "3")
    assert code == 0
    trials = trials_of(out)
    assert trials[0].state == TrialState.COMPLETE
    assert trials[0].value == pytest.approx(expected[0].value, rel=2e-6)  # unaffected by the others
    assert trials[1].state == TrialState.PRUNED
    assert trials[1].user_attrs["pruned_reason"].startswith("pruned at step 3 (val/cost_bits = ")
    assert trials[2].state == TrialState.FAIL and trials[2].user_attrs["fail_kind"] == "diverged"
    assert "non-finite loss at step 6 (member 2" in trials[2].user_attrs["fail_reason"]
    assert "[lr] trial 1 pruned (pruned at step 3" in stdout and "[lr] trial 2 failed, diverged" in stdout
    for n, state in ((1, "pruned"), (2, "failed")):
        run_dir = out / "lr" / f"trial_{n:04d}"
        assert not (run_dir / "test_metrics.csv").exists()
        assert (run_dir / "stopped.txt").read_text().strip() == (
            trials[n].user_attrs.get("pruned_reason") or trials[n].user_attrs["fail_reason"])
        records = wandb_records(run_dir)
        assert summary(records)["trial/state"] == state and summary(records)["trial/number"] == n
        (exit,) = [r["exit"] for r in records if r["type"] == "exit"]
        assert exit.get("exit_code", 0) == (0 if state == "pruned" else 1)  # a pruned run is no failure
        steps = [r["history"]["item"]["trainer/global_step"] for r in records if r["type"] == "history"]
        assert max(steps) < 6  # nothing logged once it stopped
    assert math.isfinite(trials[0].value) and (out / "lr" / "trial_0000" / "test_metrics.csv").exists()
