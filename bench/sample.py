"""`ntmbench sample`: one batch of a task, in the layout of docs/TASKS.md, to an .npz file."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from datamodules.base import ShapeError
from datamodules.registry import build_task

from core.files import write_npz

SHAPE_OPTIONS = ("length", "repeats", "items", "n_in", "n_out")


def sample_command(args: argparse.Namespace) -> int:
    task = build_task(args.task)
    given = {k: getattr(args, k) for k in SHAPE_OPTIONS if getattr(args, k) is not None}
    foreign = sorted(set(given) - set(task.shape_names))
    if foreign:
        valid = ", ".join("--" + n.replace("_", "-") for n in task.shape_names)
        bad = ", ".join("--" + n.replace("_", "-") for n in foreign)
        raise ShapeError(f"{task.name} takes {valid}, not {bad}")
    generator = torch.Generator().manual_seed(args.seed)
    shape = given
    if set(given) != set(task.shape_names):  # fill what was not given from the split's defaults
        default = task.test_shapes()[0] if args.split == "test" else task.train_shape(generator)
        shape = {**default, **given}
    task.check_shape(**shape)  # before anything is written
    batch = task.sample(generator, args.batch_size, **shape)
    arrays = {k: v.numpy() for k, v in batch.items()}
    arrays.update({k: np.array(v) for k, v in shape.items()})
    arrays["task"] = np.array(task.name)
    write_npz(Path(args.out), arrays)
    print(f"{task.name} {shape} batch={args.batch_size} -> {args.out}")
    return 0
