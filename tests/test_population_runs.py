"""Populations at the run level (core/population.py): each member writes exactly the folder of its
solo run (core/train.py) with its seed and learning rate, which evaluate, predict, report and a solo
resume read as a solo run's; one member's NaN stops that member only; a killed population resumes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml

from bench.cli import main
from core.config import ConfigError
from core.population import population_configs, train_population
from core.train import train
from core.wandb_run import Filing
from models.population_system import PopulationSystem
from models.system import NonFiniteLossError
from reports.collect import collect
from conftest import TINY_NTM
from test_reliability import ENV
from test_training import history_values, wandb_records

SEEDS, LRS = (0, 1), (1e-2, 3e-3)
# float32 round-off between the population's batched products and the solo run's products; Adam
# magnifies it where a gradient is near zero. Measured at these sizes: no difference at all
# (tests/test_population.py measures up to 5e-4 at other sizes).
TOLERANCE = 2e-3
RUN = dict(test_on="best", max_steps=9, val_every=3, checkpoint_every=3)


def members(tiny_config, out: Path, **changes) -> tuple[Path, list]:
    """The two members (seeds 0 and 1, learning rates 1e-2 and 3e-3) of a population in `out`."""
    population, cfgs = population_configs(tiny_config(out, **{**RUN, **changes}), SEEDS)
    return population, [cfg.replace(lr=lr) for cfg, lr in zip(cfgs, LRS)]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A population of two members and the two solo runs with the same seeds and learning rates."""
    from conftest import tiny

    root = tmp_path_factory.mktemp("population")
    population, cfgs = members(tiny, root / "pop")
    results = train_population(cfgs, population, filing=Filing(collection="pop"))
    solos = [train(tiny(root / f"solo{s}", seed=s, lr=lr, **RUN)) for s, lr in zip(SEEDS, LRS)]
    return root, population, results, solos


def numeric(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.select_dtypes("number")


def test_each_member_writes_the_folder_of_its_solo_run(trained) -> None:
    root, population, results, solos = trained
    assert yaml.safe_load((population / "population.yaml").read_text())["members"] == [
        str(root / "pop" / "seed0"), str(root / "pop" / "seed1")]
    for s, (result, solo) in enumerate(zip(results, solos)):
        mine, theirs = result.run_dir, solo.run_dir
        assert mine == root / "pop" / f"seed{s}" and not result.stopped
        config = yaml.safe_load((mine / "config.yaml").read_text())
        assert config == {**yaml.safe_load((theirs / "config.yaml").read_text()), "out": str(mine)}
        assert config["seed"] == SEEDS[s] and config["lr"] == LRS[s]
        # the CSV metrics: the same columns and rows (val/wall_s is the machine's, not the run's)
        a, b = (pd.read_csv(d / "csv/metrics.csv").drop(columns="val/wall_s") for d in (mine, theirs))
        assert list(a.columns) == list(b.columns) and a["step"].tolist() == b["step"].tolist()
        assert a.isna().equals(b.isna())
        pd.testing.assert_frame_equal(a, b, atol=TOLERANCE, rtol=0)
        a, b = (pd.read_csv(d / "test_metrics.csv") for d in (mine, theirs))
        pd.testing.assert_frame_equal(a, b, atol=TOLERANCE, rtol=0)
        # the checkpoints: a solo run's, key for key
        for name in ("last", "best"):
            x, y = (torch.load(d / f"checkpoints/{name}.ckpt", weights_only=False) for d in (mine, theirs))
            assert sorted(x) == sorted(y) and x["global_step"] == y["global_step"]
            assert x["TaskDataModule"] == y["TaskDataModule"] and x["hparams_name"] == y["hparams_name"]
            assert x["hyper_parameters"]["config"] == {**y["hyper_parameters"]["config"], "out": str(mine)}
            assert x["loops"] == y["loops"] and sorted(x["callbacks"]) == sorted(y["callbacks"])
            assert x["callbacks"]["SequencesSeen"] == y["callbacks"]["SequencesSeen"]
            assert sorted(x["state_dict"]) == sorted(y["state_dict"])
            for key, value in y["state_dict"].items():
                torch.testing.assert_close(x["state_dict"][key], value, atol=TOLERANCE, rtol=0)
            (ox,), (oy,) = x["optimizer_states"], y["optimizer_states"]
            assert ox["param_groups"] == oy["param_groups"] and sorted(ox["state"]) == sorted(oy["state"])
            for (key, best_x), best_y in zip(x["callbacks"].items(), y["callbacks"].values()):
                if key.startswith("ModelCheckpoint"):
                    assert best_x["best_model_path"] == str(mine / "checkpoints/best.ckpt")
                    assert float(best_x["best_model_score"]) == pytest.approx(
                        float(best_y["best_model_score"]), abs=TOLERANCE)
        # its own W&B run, grouped with its sibling's, holding what its CSV holds
        records = wandb_records(mine)
        (run,) = [r["run"] for r in records if r["type"] == "run"]
        assert run["run_group"] == "pop/copy/ntm" and run["config"]["update"]["seed"] == SEEDS[s]
        assert run["config"]["update"]["hardware"]["population"]["seeds"] == list(SEEDS)
        assert history_values(records, "val/cost_bits") == pytest.approx(
            pd.read_csv(mine / "csv/metrics.csv")["val/cost_bits"].dropna().tolist(), rel=1e-6)
        assert [r["exit"]["exit_code"] for r in records if r["type"] == "exit"] == [0]
        mine_defined, solo_defined = ([r["metric"] for r in rs if r["type"] == "metric"]
                                      for rs in (records, wandb_records(theirs)))
        assert mine_defined == solo_defined  # the same x-axis (sequences seen) and summaries
        tables = [json.loads(next(d.glob("wandb/offline-run-*/files/media/table/test/results_*.json"))
                             .read_text()) for d in (mine, theirs)]
        assert tables[0]["columns"] == tables[1]["columns"] and len(tables[0]["data"]) == 2
        assert {row[tables[0]["columns"].index("checkpoint")] for row in tables[0]["data"]} == {"best"}


def test_members_are_read_as_solo_runs_by_evaluate_predict_and_report(trained, tmp_path, capsys) -> None:
    root, _, results, solos = trained
    best = results[1].run_dir / "checkpoints/best.ckpt"
    assert main(["evaluate", "--checkpoint", str(best), "--out", str(tmp_path / "eval.csv")]) == 0
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "eval.csv"),
                                  pd.read_csv(results[1].run_dir / "test_metrics.csv"), rtol=1e-5)
    assert main(["sample", "--task", "copy", "--length", "3", "--out", str(tmp_path / "in.npz")]) == 0
    assert main(["predict", "--checkpoint", str(best), "--inputs", str(tmp_path / "in.npz"),
                 "--out", str(tmp_path / "out.npz")]) == 0
    ours, theirs = collect([root / "pop"]), collect([root / "solo0", root / "solo1"])
    assert ours.runs["run"].tolist() == ["seed0", "seed1"]  # the population's own folder is no run
    pd.testing.assert_frame_equal(ours.table.drop(columns=["run", "wall_s"]),  # the machine's, not
                                  theirs.table.drop(columns=["run", "wall_s"]),  # the run's
                                  atol=TOLERANCE, rtol=0)
    assert ours.table["wall_s"].notna().tolist() == theirs.table["wall_s"].notna().tolist()
    keep = ["task", "model", "variant", "seed", "batch_size", "max_steps", "lr", "tested"]
    pd.testing.assert_frame_equal(ours.runs[keep], theirs.runs[keep])


def test_a_member_resumes_alone_as_its_solo_run_would(trained, tiny_config, tmp_path) -> None:
    # a member's last.ckpt is a solo checkpoint: extended alone to 12 steps, the member ends where
    # a solo run of 12 steps ends
    root, _, results, _ = trained
    member = results[0].run_dir
    extended = train(tiny_config(member, seed=0, lr=LRS[0], **{**RUN, "max_steps": 12}))
    whole = train(tiny_config(tmp_path / "whole", seed=0, lr=LRS[0], **{**RUN, "max_steps": 12}))
    pd.testing.assert_frame_equal(extended.test, whole.test, atol=TOLERANCE, rtol=0)
    a, b = (pd.read_csv(d / "csv/metrics.csv").drop(columns="val/wall_s") for d in (member, whole.run_dir))
    pd.testing.assert_frame_equal(a, b, atol=TOLERANCE, rtol=0)


def test_a_non_finite_loss_stops_one_member_and_the_others_go_on(tmp_path, tiny_config, monkeypatch,
                                                                 capsys) -> None:
    forward = PopulationSystem.forward

    def poisoned(self, inputs, *lengths):
        out = forward(self, inputs, *lengths)
        if self.training and self.global_step >= 4:
            out = torch.cat([out[:1], out[1:] * float("nan")])  # member 1's outputs only
        return out

    monkeypatch.setattr(PopulationSystem, "forward", poisoned)
    population, cfgs = members(tiny_config, tmp_path / "pop")
    results = train_population(cfgs, population)
    stopped = results[1].run_dir
    why = "non-finite loss at step 4 (member 1, seed 1); lower the learning rate (--lr)"
    assert results[1].stopped.startswith(why) and results[1].test.empty
    assert (stopped / "stopped.txt").read_text().startswith(why)
    assert f"{stopped}: stopped: {why}" in capsys.readouterr().out
    ckpt = torch.load(stopped / "checkpoints/last.ckpt", weights_only=False)
    assert ckpt["global_step"] == 3 and not (stopped / "test_metrics.csv").exists()
    assert all(torch.isfinite(v).all() for v in ckpt["state_dict"].values())
    assert pd.read_csv(stopped / "csv/metrics.csv")["step"].max() < 4  # nothing logged after it
    assert [r["exit"]["exit_code"] for r in wandb_records(stopped) if r["type"] == "exit"] == [1]
    # the other member went on to the end, as its solo run does
    solo = train(tiny_config(tmp_path / "solo", seed=0, lr=LRS[0], **RUN))
    pd.testing.assert_frame_equal(results[0].test, solo.test, atol=TOLERANCE, rtol=0)


def test_each_member_records_when_it_converged(tmp_path, tiny_config, monkeypatch) -> None:
    import core.wandb_run

    monkeypatch.setattr(core.wandb_run, "CONVERGED_BELOW", 1e9)  # converged at the first validation
    population, cfgs = members(tiny_config, tmp_path / "pop", max_steps=3)
    train_population(cfgs, population)
    for cfg in cfgs:
        updates = [r["summary"]["update"] for r in wandb_records(cfg.run_dir) if r["type"] == "summary"]
        assert [u["converged_at_sequences"] for u in updates if "converged_at_sequences" in u] == [12]
    monkeypatch.setattr(core.wandb_run, "CONVERGED_BELOW", 0.0)  # no later point converges
    population, cfgs = members(tiny_config, tmp_path / "pop", max_steps=6)  # extended: resumed
    train_population(cfgs, population)
    state = torch.load(population / "last.ckpt", weights_only=False)["callbacks"]["SequencesSeen"]
    assert state == {"converged": {"m0": 12.0, "m1": 12.0}}  # step 3 x batch 4, kept on resume
    for cfg in cfgs:
        solo = torch.load(cfg.run_dir / "checkpoints/last.ckpt", weights_only=False)
        assert solo["callbacks"]["SequencesSeen"] == {"converged": {"run": 12.0}}  # a solo run's


def test_when_every_member_stops_the_population_stops(tmp_path, tiny_config, monkeypatch) -> None:
    forward = PopulationSystem.forward
    monkeypatch.setattr(PopulationSystem, "forward", lambda self, *args: forward(self, *args) * (
        float("nan") if self.training and self.global_step >= 4 else 1.0))
    population, cfgs = members(tiny_config, tmp_path / "pop")
    with pytest.raises(NonFiniteLossError, match="every member stopped; member 1: non-finite loss at step 4"):
        train_population(cfgs, population)
    for cfg in cfgs:
        assert (cfg.run_dir / "stopped.txt").exists() and not (cfg.run_dir / "test_metrics.csv").exists()


KILL_AT = """
import os, sys
sys.path.insert(0, {tests!r})
import lightning.pytorch as pl
from conftest import tiny
from core.population import population_configs, train_population

class Kill(pl.Callback):  # dies as SIGKILL would: no hook, no logger finalize, nothing flushed
    def on_train_batch_start(self, trainer, *args):
        if trainer.global_step == {step}:
            os._exit(9)

population, cfgs = population_configs(tiny({out!r}, max_steps=12, val_every=3, checkpoint_every=3,
                                           test_on="best"), [0, 1])
train_population(cfgs, population, callbacks=[Kill()])
"""


def test_a_killed_population_resumes_to_the_same_result(tmp_path, tiny_config) -> None:
    out = tmp_path / "killed"
    script = KILL_AT.format(tests=str(Path(__file__).parent), step=8, out=str(out))
    killed = subprocess.run([sys.executable, "-c", script], env=ENV, capture_output=True, text=True,
                            timeout=300)
    assert killed.returncode == 9, killed.stderr[-2000:]
    assert torch.load(out / "population/last.ckpt", weights_only=False)["global_step"] == 6
    assert not (out / "seed0/test_metrics.csv").exists()
    again = dict(max_steps=12, val_every=3, checkpoint_every=3, test_on="best")
    population, cfgs = population_configs(tiny_config(out, **again), [0, 1])
    resumed = train_population(cfgs, population)
    population, cfgs = population_configs(tiny_config(tmp_path / "whole", **again), [0, 1])
    whole = train_population(cfgs, population)
    for a, b in zip(resumed, whole):
        pd.testing.assert_frame_equal(a.test, b.test, rtol=1e-6)
        va, vb = (pd.read_csv(r.run_dir / "csv/metrics.csv").dropna(subset=["val/cost_bits"])
                  for r in (a, b))
        assert va["step"].tolist() == vb["step"].tolist() == [2, 5, 8, 11]
        assert va["val/cost_bits"].tolist() == pytest.approx(vb["val/cost_bits"].tolist(), rel=1e-6)
        folders = list(a.run_dir.glob("wandb/offline-run-*"))  # one W&B run id for both attempts
        assert len(folders) == 2 and all((a.run_dir / "wandb_id").read_text() in f.name for f in folders)


def test_a_packed_population_trains_as_a_padded_one(tmp_path, tiny_config, monkeypatch) -> None:
    # -m packed=true through Lightning: the members' batches differ in length, the packed step
    # runs fewer rows, and every member ends where the padded population's member ends. Packing
    # is the batched (compiled) path's; here the eager step stands in for the compiled one
    import models.ntm as ntm_module

    rows = []
    step = ntm_module._EAGER_STEPS[0]
    monkeypatch.setattr(ntm_module, "_COMPILED_STEPS", (
        lambda spec, base, *a: rows.append(base.shape[0]) or step(spec, base, *a),
        ntm_module._EAGER_STEPS[1]))
    results = {}
    for packed in (False, True):
        options = {**TINY_NTM, "fused": "compile", "packed": packed}
        population, cfgs = members(tiny_config, tmp_path / f"packed-{packed}", model_options=options)
        rows.clear()
        results[packed] = (train_population(cfgs, population), sum(rows))
    (padded, padded_rows), (packed, packed_rows) = results[False], results[True]
    assert packed_rows < padded_rows  # it skipped the rows of members that had ended
    for a, b in zip(padded, packed):
        pd.testing.assert_frame_equal(a.test, b.test, atol=TOLERANCE, rtol=0)


def test_a_population_refuses_what_it_cannot_train_before_writing(tmp_path, tiny_config, capsys) -> None:
    flags = ["train", "--task", "copy", "--preset", "none", "--max-steps", "3", "--val-every", "3"]
    assert main([*flags, "--seed", "1", "--seeds", "0,1", "--out", str(tmp_path / "a")]) == 2
    assert "give --seed (one run) or --seeds (a population), not both" in capsys.readouterr().err
    assert main([*flags, "--seeds", "0,0", "--out", str(tmp_path / "a")]) == 2
    assert "expected distinct integers >= 0" in capsys.readouterr().err
    assert main([*flags, "--seeds", "0,1", "--devices", "2", "--out", str(tmp_path / "a")]) == 2
    assert "a population trains on one device" in capsys.readouterr().err
    assert not (tmp_path / "a").exists()
    # a member folder that holds a solo run is not taken over
    train(tiny_config(tmp_path / "b" / "seed1", seed=1, max_steps=3))
    before = (tmp_path / "b" / "seed1" / "checkpoints/last.ckpt").read_bytes()
    population, cfgs = population_configs(tiny_config(tmp_path / "b", max_steps=3), [0, 1])
    with pytest.raises(ConfigError, match="seed1 holds a run trained outside this population"):
        train_population(cfgs, population)
    assert (tmp_path / "b" / "seed1" / "checkpoints/last.ckpt").read_bytes() == before
    assert not (tmp_path / "b" / "seed0").exists()


def test_train_seeds_writes_one_folder_per_seed_and_one_table(tmp_path, capsys) -> None:
    flags = ["train", "--task", "copy", "--preset", "none", "-m", "memory_size=8", "-m",
             "memory_width=4", "-m", "controller_size=8", "-t", "max_length=3", "-t",
             "test_lengths=[5]", "--batch-size", "2", "--max-steps", "2", "--val-every", "2",
             "--val-batches", "1", "--val-batch-size", "2", "--test-batch-size", "2", "--no-progress"]
    assert main([*flags, "--seeds", "3,5", "--out", str(tmp_path / "pop")]) == 0
    out = capsys.readouterr().out
    assert "seeds 3,5: test per length (members in" in out
    for seed in (3, 5):
        run = tmp_path / "pop" / f"seed{seed}"
        assert yaml.safe_load((run / "config.yaml").read_text())["seed"] == seed
        rows = pd.read_csv(run / "test_metrics.csv")
        assert rows["seed"].tolist() == [seed] and rows["label"].tolist() == ["len_005"]
        assert f"│    {seed} │ len_005 │" in out  # the table's row of that member
    assert sorted(p.name for p in (tmp_path / "pop").iterdir()) == ["population", "seed3", "seed5"]
