"""`ntmbench wandb-workspace`: the saved W&B views of a project (reports/workspace.py), their
sweep panels over the values the shipped sweep files sample (sweeps/*.yaml)."""

from __future__ import annotations

from pathlib import Path

from core.errors import RunError, first_line
from datamodules.registry import TASKS
from reports.workspace import build_views, describe
from sweeps.spec import SweepSpec

SWEEP_FILES = Path(__file__).resolve().parents[1] / "sweeps"


def sampled_params(files: list[Path]) -> list[str]:
    """Every value the sweep files sample, in first-seen order (seed, the one every population
    sweep may sample, left out: it is no hyperparameter)."""
    names: dict[str, None] = {}
    for path in files:
        for param in SweepSpec.load(path).space:
            if param.name != "seed":
                names.setdefault(param.name)
    return list(names)


def workspace_command(entity: str, project: str, tasks: list[str] | None, dry_run: bool,
                      as_json: bool) -> int:
    unknown = sorted(set(tasks or []) - set(TASKS))
    if unknown:
        raise RunError(f"unknown task {unknown[0]!r} in --tasks; the tasks: {', '.join(TASKS)}")
    params = sampled_params(sorted(SWEEP_FILES.glob("*.yaml")))
    views = build_views(entity, project, tasks or list(TASKS), params)
    if dry_run:
        for view in views:
            print(view._to_model().model_dump_json(indent=2) if as_json else "\n".join(describe(view)))
        return 0
    for view in views:
        try:
            view.save()
        except Exception as error:  # no key, no network, no such entity: wandb raises many kinds
            raise RunError(f"cannot save the W&B view {view.name!r} to {entity}/{project} "
                           f"({first_line(error)}); "
                           f"log in with `wandb login` (or set WANDB_API_KEY), or look at it with "
                           f"--dry-run") from None
        print(f"{view.name}: {view.url}")
    return 0
