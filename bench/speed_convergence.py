"""The convergence section: the demo's NTM recipe (`bench/plans/quick.yaml`, copy) on ten seeds,
trained as one population, and how many learn and when.

Each seed is the demo's NTM run with that seed (same sizes, optimizer, schedule, batch and
budget); the ten train together (core/population.py), so a member follows the solo run of its
seed to float32 round-off (which spikes can grow into another trajectory over a run). Per seed
the table reads its CSV metrics: the first validation below 0.1 bit errors per sequence
(sequences and the population's seconds by then), the worst validation after it, and the last
validation, which decides whether the seed learned (as the demo's verdict does):

    ntmbench bench --only convergence                  (make bench: seeds 0, 1, ..., 9)
    ntmbench bench --only convergence --quick          (two seeds, a short budget: a smoke test)
"""

from __future__ import annotations

import math
import os
import shutil
import time
from pathlib import Path

import pandas as pd
import torch

from core.config import CONVERGED_BELOW, RunConfig
from core.population import population_configs, train_population
from core.tables import markdown
from core.wandb_run import Filing
from reports.converge import sequences_to_converge

from .plan import load_plan, planned_runs

PLAN = "quick"  # the demo's plan
QUICK_STEPS = 60  # --quick: updates per member (a smoke test of the section, not a result)


def demo_recipe(out: Path, quick: bool = False) -> RunConfig:
    """The demo's NTM run (its plan's first NTM row) with its folder under `out`, no W&B."""
    ntm = next(run.config for run in planned_runs(load_plan(PLAN), out, {}) if run.config.model == "ntm")
    changes = dict(out=str(out), wandb_mode="disabled", progress=False)
    if quick:
        changes.update(max_steps=QUICK_STEPS, val_every=20, checkpoint_every=QUICK_STEPS,
                       warmup_steps=min(ntm.warmup_steps, QUICK_STEPS // 2),
                       task_options={**ntm.task_options, "test_lengths": [30]})
    return ntm.replace(**changes)


def member_row(run_dir: Path, seed: int) -> dict:
    """When seed `seed` first validated below the threshold, its worst validation after, its last."""
    metrics = pd.read_csv(run_dir / "csv" / "metrics.csv").dropna(subset=["val/bit_errors"])
    metrics = metrics.sort_values("step", kind="stable")
    last = float(metrics["val/bit_errors"].iloc[-1])
    row = {"seed": seed, "reached": False, "sequences": None, "seconds": None, "worst_after": None,
           "last": last, "learned": last < CONVERGED_BELOW}
    first = sequences_to_converge(metrics, x="train/sequences", y="val/bit_errors")  # the report's
    if not math.isnan(first):
        after = metrics[metrics["train/sequences"] >= first]
        row.update(reached=True, sequences=int(first), seconds=float(after["val/wall_s"].iloc[0]),
                   worst_after=float(after["val/bit_errors"].max()))
    return row


def convergence_section(seeds: list[int], quick: bool = False,
                        out: Path = Path("runs/bench-convergence")) -> pd.DataFrame:
    """The seeds as one population of the demo's NTM run, one thread (as the demo's runs get);
    one row per seed. The folder is replaced: a fresh run, never a resumed one."""
    os.environ.setdefault("WANDB_SILENT", "true")
    seeds = seeds[:2] if quick else seeds
    shutil.rmtree(out, ignore_errors=True)
    population, cfgs = population_configs(demo_recipe(out, quick), seeds)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    start = time.perf_counter()
    try:
        results = train_population(cfgs, population, filing=Filing(collection="bench-convergence",
                                                                    tags=("bench",)))
    finally:
        torch.set_num_threads(threads)
    total = time.perf_counter() - start
    cfg = cfgs[0]
    rows = []
    for seed, result in zip(seeds, results):
        row = member_row(result.run_dir, seed)
        print(f"  seed {seed}: " + (f"below {CONVERGED_BELOW} at {row['sequences']:,} sequences, "
                                    if row["reached"] else f"never below {CONVERGED_BELOW}, ")
              + f"last validation {row['last']:.3f}", flush=True)
        rows.append({**row, "budget": cfg.max_steps * cfg.batch_size, "population_seconds": total,
                     "optimizer": cfg.optimizer, "lr": cfg.lr, "lr_schedule": cfg.lr_schedule,
                     "warmup_steps": cfg.warmup_steps, "batch_size": cfg.batch_size, "threads": 1})
    return pd.DataFrame(rows)


def convergence_table(df: pd.DataFrame) -> str:
    df = df.copy()
    learned = int(df["learned"].sum())
    reached = df[df["reached"]]
    recipe = df.iloc[0]
    summary = {"seed": "median", "learned": f"{learned}/{len(df)}",
               "sequences": reached["sequences"].median() if len(reached) else None,
               "seconds": reached["seconds"].median() if len(reached) else None,
               "last": df["last"].median()}
    df["seed"] = df["seed"].astype(str)
    for column in ("reached", "learned"):
        df[column] = df[column].map(lambda r: "yes" if r else "no")
    df = pd.concat([df, pd.DataFrame([summary])], ignore_index=True)
    table = markdown(df, {
        "seed": "seed", "reached": f"reached < {CONVERGED_BELOW}", "sequences": "at sequences",
        "seconds": "at population s", "worst_after": "worst val after", "last": "last val",
        "learned": f"learned (last < {CONVERGED_BELOW})"},
        {"sequences": ".0f", "seconds": ".0f", "worst_after": ".3f", "last": ".3f"})
    return (f"{table}\n\nRecipe (the demo's, bench/plans/{PLAN}.yaml): {recipe['optimizer']} lr "
            f"{recipe['lr']:g}, {recipe['lr_schedule']} schedule, {recipe['warmup_steps']} warm-up "
            f"updates, batch {recipe['batch_size']}, {recipe['budget']:,} sequences per seed; the "
            f"{len(df) - 1} seeds trained as one population in {recipe['population_seconds']:.0f} s "
            f"(1 thread).")
