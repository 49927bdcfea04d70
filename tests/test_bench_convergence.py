"""The bench's convergence section (bench/speed_convergence.py): it runs the demo's NTM recipe, and
reads each seed's CSV into when it first validated below 0.1, its worst validation after, and
whether its last validation counts as learned."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from bench.plan import load_plan, planned_runs
from bench.speed_convergence import convergence_table, demo_recipe, member_row


def test_the_section_runs_the_demos_ntm_run(tmp_path) -> None:
    demo = next(r.config for r in planned_runs(load_plan("quick"), tmp_path, {}) if r.config.model == "ntm")
    ours = demo_recipe(tmp_path / "conv")
    assert ours.identity() == demo.identity() and ours.wandb_mode == "disabled"
    quick = demo_recipe(tmp_path / "conv", quick=True)
    assert quick.max_steps < demo.max_steps and quick.optimizer == demo.optimizer


def metrics(run_dir: Path, errors: list[float], batch: int = 32, every: int = 50) -> Path:
    rows = []
    for i, e in enumerate(errors, 1):  # a training row between validations, as Lightning logs them
        rows.append({"epoch": 0, "step": i * every - 1, "train/bit_errors": 9.0,
                     "train/sequences": i * every * batch})
        rows.append({"epoch": 0, "step": i * every - 1, "val/bit_errors": e, "val/wall_s": 10.0 * i,
                     "train/sequences": i * every * batch})
    (run_dir / "csv").mkdir(parents=True)
    pd.DataFrame(rows).to_csv(run_dir / "csv/metrics.csv", index=False)
    return run_dir


def test_a_seed_reads_as_when_it_first_learned_and_how_it_ended(tmp_path) -> None:
    learned = member_row(metrics(tmp_path / "a", [30.0, 0.5, 0.05, 0.4, 0.02]), seed=3)
    assert learned == {"seed": 3, "reached": True, "sequences": 3 * 50 * 32, "seconds": 30.0,
                       "worst_after": 0.4, "last": 0.02, "learned": True}
    relapsed = member_row(metrics(tmp_path / "b", [30.0, 0.05, 12.0]), seed=4)
    assert relapsed["reached"] and not relapsed["learned"] and relapsed["worst_after"] == 12.0
    never = member_row(metrics(tmp_path / "c", [30.0, 1.0]), seed=5)
    assert not never["reached"] and never["sequences"] is None and never["last"] == 1.0


def test_the_table_counts_the_seeds_that_learned(tmp_path) -> None:
    recipe = dict(budget=40_000, population_seconds=300.0, optimizer="adam", lr=3e-3,
                  lr_schedule="cosine", warmup_steps=100, batch_size=32, threads=1)
    rows = [member_row(metrics(tmp_path / str(s), e), s) | recipe
            for s, e in enumerate([[30.0, 0.05], [30.0, 0.05, 12.0], [30.0, 1.0]])]
    table = convergence_table(pd.DataFrame(rows))
    median = next(line for line in table.splitlines() if "median" in line)
    assert "1/3" in median and "3200" in median  # one learned; reached at 3,200 sequences (median)
    assert "adam lr 0.003, cosine schedule, 100 warm-up updates, batch 32, 40,000 sequences" in table
    assert "3 seeds trained as one population in 300 s" in table
