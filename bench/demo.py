"""`ntmbench demo`: the README's first command. Trains the NTM (LSTM controller) and the LSTM
baseline briefly on copy, on the CPU with W&B offline, and prints their per-length test results
side by side. A small version of `make reproduce` (issue 8 grows it into the full plan)."""

from __future__ import annotations

import time

import pandas as pd
from rich.console import Console
from rich.table import Table

from .config import RunConfig

DEMO = dict(task="copy", preset="paper", optimizer="adam", batch_size=16, val_every=250,
            checkpoint_every=250, val_batches=4, test_batch_size=50)
DEMO_LR = {"ntm": 1e-3, "lstm": 1e-3}


def demo_command(steps: int, out: str, seed: int) -> int:
    frames = []
    for model in ("ntm", "lstm"):
        cfg = RunConfig(model=model, max_steps=steps, seed=seed, lr=DEMO_LR[model],
                        out=f"{out}/copy-{model}-seed{seed}", **DEMO)
        from .train import train

        start = time.perf_counter()
        rows = train(cfg).test
        rows["minutes"] = (time.perf_counter() - start) / 60
        frames.append(rows)
    rows = pd.concat(frames)
    table = Table(title=f"copy, trained on lengths 1..20 for {steps} steps of batch 16: "
                        f"bit errors per sequence (lower is better)")
    table.add_column("test length", justify="right")
    for model in ("ntm", "lstm"):
        table.add_column(model, justify="right")
    for label, group in rows.groupby("label", sort=True):
        errors = group.set_index("model")["bit_errors"]
        table.add_row(str(int(group["length"].iloc[0])), *(f"{errors[m]:.2f}" for m in ("ntm", "lstm")))
    Console().print(table)
    print(f"runs, checkpoints and W&B offline files under {out}/ (wandb sync {out}/*/wandb/offline-run-*)")
    return 0
