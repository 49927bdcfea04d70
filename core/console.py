"""A quiet console: a command prints what its user needs (where its output goes, progress,
results), not the libraries' tips, notices and deprecation warnings. `--verbose` (or
NTMBENCH_VERBOSE=1, which child processes inherit) brings them back.

    copy/ntm seed 0: 62,346 parameters on CPU, 2 threads -> runs/copy-ntm      (start_line)
    copy/ntm seed 0:  40%|####      | 400/1000 [00:08<00:12, val/bit_errors=7.1]   (RunProgressBar)

What `quiet_console` hides: Lightning's info lines (GPU/TPU available, its LitLogger and
LitModels tips, the `weights_only` notice), DeprecationWarning and FutureWarning from any library,
Lightning's warnings that a resumed run's CSV folder (core/train.py keeps its rows) or
checkpoint folder (its best.ckpt is the run's own) is not empty and, under DDP, its advice to
sync epoch-level metrics (every rank validates the whole fixed validation set, so they agree).
W&B's console is silenced where its runs open (core/wandb_run.py).
"""

from __future__ import annotations

import logging
import os
import sys
import time
import warnings
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import TQDMProgressBar
from lightning.pytorch.callbacks.progress.tqdm_progress import Tqdm

from .hardware import describe_hardware

VERBOSE_ENV = "NTMBENCH_VERBOSE"
QUIET_LOGGERS = ("lightning.pytorch", "lightning.fabric", "lightning")
QUIET_MESSAGES = (r"Experiment logs directory .* exists and is not empty",
                  # a resumed run's best.ckpt is its own, replaced when validation improves
                  r"Checkpoint directory .* exists and is not empty",
                  # under DDP every rank validates the whole fixed validation set: equal values
                  r".*sync_dist=True.*")


def verbose() -> bool:
    return os.environ.get(VERBOSE_ENV, "") not in ("", "0")


def quiet_console(loud: bool = False) -> None:
    """Hide the libraries' console chatter in this process (unless `loud` or NTMBENCH_VERBOSE;
    `loud` sets NTMBENCH_VERBOSE for the processes this one starts)."""
    if loud:
        os.environ[VERBOSE_ENV] = "1"
    if verbose():
        return
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    for category in (DeprecationWarning, FutureWarning):
        warnings.filterwarnings("ignore", category=category)
    for message in QUIET_MESSAGES:
        warnings.filterwarnings("ignore", message=message)


PROGRESS_POSITION_ENV = "NTMBENCH_PROGRESS_POSITION"  # 1: under a command's overall bar
RUN_BARS_ENV = "NTMBENCH_RUN_BARS"  # 0: no run bars (workers side by side: the parent's bar only)


def progress_position() -> int:
    """Where a run's bar goes: 0, or 1 under the overall bar of reproduce, demo or sweep."""
    return int(os.environ.get(PROGRESS_POSITION_ENV, "0") or 0)


def run_bars() -> bool:
    """Whether runs in this process draw their bars (not in workers that train side by side,
    whose bars would overwrite each other's: their parent draws the overall bar)."""
    return os.environ.get(RUN_BARS_ENV, "1") != "0"


class OverallBar:
    """The bar of a command that trains many runs (reproduce, demo, sweep): runs or trials done
    of the total, the time so far and an ETA from the ones finished in this command (the average
    of their times; those finished before it are not counted). On a terminal the current run's
    bar is drawn under it; elsewhere (a log file, CI) each step is one line instead, and the run's
    bar is the only bar.

        plan quick: 1/2 runs [04:10<04:10]
        copy/lstm seed 0:  40%|####      | 1200/3000 [01:02<01:33, val/bit_errors=9.1]
    """

    def __init__(self, label: str, total: int, done: int = 0, unit: str = "runs",
                 enabled: bool = True) -> None:
        self.label, self.total, self.unit, self.enabled = label, total, unit, enabled
        self.n, self.start_n, self.start = done, done, time.perf_counter()
        self.drawn = enabled and sys.stdout.isatty()
        self.bar = Tqdm(desc=label, total=total, initial=done, position=0, leave=True, smoothing=0,
                        dynamic_ncols=True, file=sys.stdout, disable=not self.drawn,
                        bar_format="{desc}: {n_fmt}/{total_fmt} " + unit + " [{elapsed}<{remaining}]")
        self.previous: str | None = None

    def __enter__(self) -> "OverallBar":
        self.previous = os.environ.get(PROGRESS_POSITION_ENV)
        if self.drawn:
            os.environ[PROGRESS_POSITION_ENV] = "1"
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.previous is None:
            os.environ.pop(PROGRESS_POSITION_ENV, None)
        else:
            os.environ[PROGRESS_POSITION_ENV] = self.previous
        self.bar.close()

    def line(self) -> str:
        """`plan quick: 1/2 runs, 4:10 so far, about 4:10 left` (the average of those finished)."""
        elapsed = time.perf_counter() - self.start
        text = f"{self.label}: {self.n}/{self.total} {self.unit}, {clock(elapsed)} so far"
        finished = self.n - self.start_n
        if finished and self.n < self.total:
            text += f", about {clock(elapsed / finished * (self.total - self.n))} left"
        return text

    def reached(self, n: int) -> None:
        """The count is now `n` (runs finished, or a study's trials with a verdict)."""
        if n == self.n:
            return
        self.bar.update(n - self.n)
        self.n = n
        if self.enabled and not self.drawn:
            say(self.line())

    def done(self, n: int = 1) -> None:
        self.reached(self.n + n)


def clock(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def say(line: str) -> None:
    """One line for the user, above any progress bar that is drawn."""
    Tqdm.write(line, file=sys.stdout)
    sys.stdout.flush()


def start_line(who: str, parameters: int, found: dict[str, Any], folder: Any,
               resume_step: int | None, max_steps: int, each: bool = False) -> str:
    """The line a run prints as it starts: what, how big, on what, where to, and where from
    (`each`: the parameters are one member's)."""
    line = (f"{who}: {parameters:,} parameters{' each' if each else ''} on "
            f"{describe_hardware(found)} -> {folder}")
    if resume_step:
        line += f" (resuming at step {resume_step:,} of {max_steps:,})"
    return line


class RunProgressBar(TQDMProgressBar):
    """Lightning's tqdm bar, one line per run: training steps done of `max_steps` (a resumed run
    starts at its step, not at 0 of an unknown total), the run's name as its label and the latest
    validation metrics beside it. No bars for validation and test, whose lines would otherwise
    pile up on a console that is not a terminal. `position` 1 puts it under a command's overall
    bar (OverallBar)."""

    def __init__(self, label: str, refresh_rate: int = 10, position: int = 0) -> None:
        super().__init__(refresh_rate=refresh_rate)
        self.label, self.position = label, position

    def init_train_tqdm(self) -> Tqdm:
        return Tqdm(desc=self.label, position=self.position, disable=self.is_disabled,
                    total=self.trainer.max_steps, initial=self.trainer.global_step,
                    leave=self.position == 0, dynamic_ncols=True, file=sys.stdout, smoothing=0,
                    bar_format=self.BAR_FORMAT)

    def get_metrics(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict:
        """The bar's metrics without Lightning's logger version (`v_num`), by their logged names."""
        metrics = super().get_metrics(trainer, pl_module)
        metrics.pop("v_num", None)
        return {k.removesuffix("_bar"): v for k, v in metrics.items()}

    def _off(self) -> Tqdm:
        return Tqdm(disable=True)

    init_sanity_tqdm = init_validation_tqdm = init_test_tqdm = _off

    def on_train_epoch_start(self, trainer: pl.Trainer, *_: Any) -> None:
        bar = self.train_progress_bar
        bar.reset(total=trainer.max_steps)
        bar.initial = trainer.global_step  # a resumed run: its rate counts this attempt's steps
        bar.n = trainer.global_step
        bar.set_description(self.label)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *_: Any) -> None:
        n = trainer.global_step
        if self._should_update(n, self.train_progress_bar.total):
            self.train_progress_bar.n = n
            self.train_progress_bar.set_postfix(self.get_metrics(trainer, pl_module))
