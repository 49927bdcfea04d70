"""`ntmbench bench --only population`: S members of one model trained as one batched computation
(models/members.py: every weight stacked on a member dimension) against one member alone.

For S in 1, 2, 4, 8, 16 at batch 1 and 32: member-sequences per second (S x batch sequences per
training step, per second) of the paper's copy NTM (compiled; eager with --quick) and of the
paper's copy LSTM (its members run one after another: no batched member path yet), 1 thread,
copy length 20 (T = 41). S = 1 is the solo network itself, not a population of one. Every
member trains on the same batch here: the timing does not depend on the values.
"""

from __future__ import annotations

import statistics
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: never look for a display (before pyplot is imported)
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
import torch  # noqa: E402

from core.tables import markdown  # noqa: E402
from models.members import stack  # noqa: E402
from models.metrics import sequence_costs  # noqa: E402
from models.presets import preset  # noqa: E402
from models.registry import build_model  # noqa: E402

from .speed_timing import Step, copy_batch, interleaved  # noqa: E402

MEMBERS = (1, 2, 4, 8, 16)
BATCHES = (1, 32)
LENGTH = 20


def population_step(model: str, options: dict, members: int, batch: dict, device: torch.device,
                    lr: float = 1e-4) -> Step:
    """A training step of `members` networks (seeds 0..S-1) on `batch`, each member's loss its
    mean cost per sequence, Adam; S = 1 trains the solo network."""
    inputs, targets, mask = batch["inputs"], batch["targets"], batch["mask"]
    nets = []
    for seed in range(members):
        torch.manual_seed(seed)
        nets.append(build_model(model, inputs.shape[-1], targets.shape[-1], **options))
    net = (nets[0] if members == 1 else stack(nets)).to(device)
    if members > 1:  # (S, B, T, .): every member on the same batch
        inputs, targets, mask = (t.expand(members, *t.shape) for t in (inputs, targets, mask))
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)

    def step() -> None:
        logits = net(inputs)
        costs = sequence_costs(logits.reshape(-1, *logits.shape[-2:]),
                               targets.reshape(-1, *targets.shape[-2:]),
                               mask.reshape(-1, mask.shape[-1]))  # (S*B,)
        loss = costs.view(members, -1).mean(1).sum()  # each member's mean: its own gradient
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    step.net = net  # type: ignore[attr-defined]  # what it trains, for the tests
    return step


def population_section(device: torch.device, quick: bool = False) -> pd.DataFrame:
    """One row per (model, batch, members): ms per step and member-sequences per second, and
    the speed-up over S = 1 (median over interleaved rounds of the per-member-sequence ratio)."""
    ntm = dict(preset("paper", "copy", "ntm")["options"], fused="eager" if quick else "compile")
    lstm = preset("paper", "copy", "lstm")["options"]
    members = MEMBERS[:3] if quick else MEMBERS
    steps = {}
    for B in BATCHES:
        batch = copy_batch(B, LENGTH, device)
        for name, model, options in (("ntm", "ntm", ntm), ("lstm", "lstm", lstm)):
            for S in members:
                steps[(name, B, S)] = population_step(model, options, S, batch, device)
    times = interleaved(steps, device, rounds=3 if quick else 7, block_seconds=0.1 if quick else 0.3)
    rows = []
    for (name, B, S), t in times.items():
        one = times[(name, B, 1)]["cpu"]
        cpu = statistics.median(t["cpu"])
        rows.append({
            "model": name, "batch": B, "members": S, "path": ntm["fused"] if name == "ntm" else "loop",
            "ms_per_step": 1e3 * cpu, "member_sequences_per_s": S * B / cpu,
            "x_one_member": statistics.median(S * a / b for a, b in zip(one, t["cpu"])),
        })
    return pd.DataFrame(rows)


def population_table(df: pd.DataFrame) -> str:
    return markdown(df, {
        "model": "model", "path": "path", "batch": "batch", "members": "members S",
        "ms_per_step": "ms / step (CPU)", "member_sequences_per_s": "member-sequences / s",
        "x_one_member": "x S = 1",
    }, {"ms_per_step": ".1f", "member_sequences_per_s": ".0f", "x_one_member": ".2f"})


def plot_population(df: pd.DataFrame, path: Path) -> None:
    """Member-sequences per second against S, one line per model, one panel per batch size."""
    sns.set_theme(style="whitegrid")
    batches = sorted(df["batch"].unique())
    fig, axes = plt.subplots(1, len(batches), figsize=(5 * len(batches), 3.6), squeeze=False)
    for ax, B in zip(axes[0], batches):
        part = df[df["batch"] == B]
        sns.lineplot(part, x="members", y="member_sequences_per_s", hue="model", marker="o", ax=ax)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.yaxis.set_major_locator(matplotlib.ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
        ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        members = sorted(part["members"].unique())
        ax.set_xticks(members, [str(s) for s in members])
        ax.set_title(f"batch {B}")
        ax.set_xlabel("members S trained as one")
        ax.set_ylabel("member-sequences / s (1 thread)")
    fig.suptitle("Populations: S copy models (paper sizes) in one batched pass")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
