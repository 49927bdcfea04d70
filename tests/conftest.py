from __future__ import annotations

import os

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
# The fast tier's models are tiny: one thread each avoids oversubscribing a 2-core machine when
# tests start subprocesses (which inherit this).
os.environ.setdefault("OMP_NUM_THREADS", "1")
# as the command line sets it (bench/cli.py): MKL reads it when it starts, before torch is imported
os.environ.setdefault("MKL_CBWR", "AUTO,STRICT")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)

from core.config import RunConfig  # noqa: E402

TINY_NTM = {"memory_size": 8, "memory_width": 4, "controller_size": 8}


def tiny(out, **changes) -> RunConfig:
    """A run small enough for the fast tier: a tiny NTM, short copy sequences, few steps."""
    values = dict(task="copy", model="ntm", preset="none", model_options=dict(TINY_NTM),
                  task_options={"max_length": 4, "test_lengths": [6, 9]}, optimizer="adam",
                  lr=1e-2, batch_size=4, max_steps=6, val_every=3, checkpoint_every=3,
                  val_batches=2, val_batch_size=4, test_batch_size=4, out=str(out), progress=False)
    values.update(changes)
    return RunConfig.from_dict(values)


@pytest.fixture
def tiny_config():
    return tiny


@pytest.fixture(autouse=True)
def no_wandb_run_left_open():
    """A test whose run failed leaves its W&B run open (the CLI's exit closes it); close it here
    so the next test's run is its own."""
    yield
    import wandb

    if wandb.run is not None:
        wandb.finish(exit_code=1)
