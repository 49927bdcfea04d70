"""A sweep: one Optuna study, created once, then worked on by one or more workers.

    ntmbench sweep --config sweeps/copy-ntm.yaml --trials 30 --workers 2

1. The launcher validates the sweep file and the storage URL (nothing is written before both are
   good), creates the study, or loads it and checks it was made from the same sweep file, and binds
   the folder `<out>/<study>/` to it. Creating once, before any worker starts, avoids the race of
   several processes creating one study in a fresh database.
2. Trials that were running when a worker died are failed (`fail_kind: interrupted`): on this
   machine at once (their worker's process is gone), elsewhere when their heartbeat stops.
3. Each worker loops: claim a trial if the budget has room (with `--population K`, up to K
   trials that share their structure, trained as one population: sweeps/population.py), run
   it, tell the study. The budget is
   the requested number of trials that reached a verdict (complete, pruned, diverged or invalid),
   running ones included; interrupted ones do not count, so a rerun of the same command picks up
   where the study stopped and finishes it. Claims on one machine are serialized by a file lock;
   a claim that lost a race with another machine is recorded as `surplus` and not run.
"""

from __future__ import annotations

import ctypes
import fcntl
import json
import multiprocessing
import os
import signal
import sys
import time
import uuid
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from core.console import OverallBar, say, verbose
from core.config import ConfigError
from core.errors import RunError
from core.files import write_text

from .spec import SweepSpec
from .storage import open_storage, redact
from .population import run_trials, structural_params
from .trial import COUNTED_FAILS, Heartbeat, Outcome, finish, worker_alive, worker_identity

COUNTED_STATES = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.WAITING)


@dataclass(frozen=True)
class Sweep:
    """Everything a worker needs (it is sent to worker processes, so plain values only)."""

    spec: SweepSpec
    storage_url: str
    study_name: str
    out: Path
    trials: int
    population: int = 1  # trials claimed together, trained as one population where they can be

    @property
    def dir(self) -> Path:
        return self.out / self.study_name


def verdicts(study: optuna.Study) -> int:
    """The study's trials with a verdict (complete, pruned, or a counted failure)."""
    ended = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    return sum(1 for t in study.get_trials(deepcopy=False) if t.state in ended and counts(t))


def counts(trial: FrozenTrial) -> bool:
    """Does this trial use up one of the budget's trials?"""
    if trial.state == TrialState.FAIL:
        return trial.user_attrs.get("fail_kind") in COUNTED_FAILS
    return trial.state in COUNTED_STATES


def open_study(sweep: Sweep, storage: optuna.storages.RDBStorage) -> optuna.Study:
    """Create the study, or load it; either way check it belongs to this sweep file."""
    spec = sweep.spec
    try:
        study = optuna.create_study(storage=storage, study_name=sweep.study_name,
                                    direction=spec.direction, pruner=spec.make_pruner())
        study.set_user_attr("sweep", spec.identity())
        study.set_user_attr("uid", uuid.uuid4().hex)
    except optuna.exceptions.DuplicatedStudyError:
        study = optuna.load_study(study_name=sweep.study_name, storage=storage,
                                  pruner=spec.make_pruner())
        for _ in range(100):  # another machine created it this instant and is labelling it
            if "uid" in study.user_attrs:
                break
            time.sleep(0.1)
    theirs = study.user_attrs.get("sweep")
    if theirs != spec.identity():
        diff = sorted(k for k in spec.identity() if (theirs or {}).get(k) != spec.identity()[k])
        raise ConfigError(
            f"study {sweep.study_name!r} in {redact(sweep.storage_url)} was made from another sweep "
            f"(differs in {', '.join(diff) or 'everything'}); pass --study NEW_NAME for a new study"
        )
    return study


def bind_folder(sweep: Sweep, study: optuna.Study) -> None:
    """`<out>/<study>/study.json` names the study its trial folders belong to; a folder left by an
    older study of the same name (its storage since deleted) is refused, never mixed in."""
    marker = sweep.dir / "study.json"
    mine = {"study": sweep.study_name, "storage": redact(sweep.storage_url),
            "uid": study.user_attrs["uid"]}
    if marker.exists():
        theirs = json.loads(marker.read_text())
        if theirs.get("uid") != mine["uid"]:
            raise ConfigError(
                f"{sweep.dir} holds the trials of another study named {sweep.study_name!r} "
                f"(storage {theirs.get('storage')}); delete that folder or pass --study/--out"
            )
    else:
        write_text(marker, json.dumps(mine, indent=2) + "\n")


def recover_interrupted(study: optuna.Study) -> list[int]:
    """Fail the running trials whose worker is gone; returns their numbers."""
    failed = []
    for frozen in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = frozen.user_attrs.get("worker")
        if not worker or worker_alive(worker) is not False:
            continue
        trial = optuna.Trial(study, frozen._trial_id)
        try:
            trial.set_user_attr("fail_kind", "interrupted")
            trial.set_user_attr("fail_reason", f"interrupted: worker {worker['host']}:{worker['pid']} "
                                               f"died mid-trial")
            study.tell(frozen.number, state=TrialState.FAIL)
            failed.append(frozen.number)
        except (optuna.exceptions.UpdateFinishedTrialError, RuntimeError, ValueError):
            pass  # another process recovered it first
    with warnings.catch_warnings():  # workers on other machines: by their heartbeat
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    return failed


@contextmanager
def file_lock(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def claim(sweep: Sweep, study: optuna.Study, fixed: dict[str, Any] | None = None) -> optuna.Trial | None:
    """A new trial if the budget has room, else None. With `fixed`, the trial is enqueued with
    those values (Optuna samples only its others)."""
    with file_lock(sweep.dir / ".claim.lock"):
        if sum(counts(t) for t in study.get_trials(deepcopy=False)) >= sweep.trials:
            return None
        with warnings.catch_warnings():  # "heartbeat is for optimize()": we run our own
            warnings.simplefilter("ignore")
            if fixed:
                study.enqueue_trial(fixed)  # the next ask pops it (unless a worker elsewhere does)
            trial = study.ask()
        trial.set_user_attr("worker", worker_identity())
    earlier = [t for t in study.get_trials(deepcopy=False) if t.number < trial.number and counts(t)]
    if len(earlier) >= sweep.trials:  # a worker on another machine took the last slot meanwhile
        finish(study, trial, Outcome(TrialState.FAIL, kind="surplus",
                                     reason=f"the budget of {sweep.trials} trials was already claimed"))
        return None
    return trial


def claim_batch(sweep: Sweep, study: optuna.Study) -> list[optuna.Trial]:
    """Up to `sweep.population` trials to train together (sweeps/population.py): the first samples
    every value, the others share its structural ones. Empty when the budget is used up."""
    first = claim(sweep, study)
    if first is None:
        return []
    trials = [first]
    if sweep.population > 1:
        study.sampler = sweep.spec.sampler_for(first.number)
        fixed = structural_params(sweep.spec.suggest(first))
        while len(trials) < sweep.population:
            trial = claim(sweep, study, fixed)
            if trial is None:
                break
            trials.append(trial)
    return trials


def work(sweep: Sweep, bar: OverallBar | None = None) -> int:
    """One worker: run trials until the budget is used up. Returns how many it ran. `bar`: the
    command's overall bar, where this worker is the command's only one."""
    storage = open_storage(sweep.storage_url, create=False)
    study = optuna.load_study(study_name=sweep.study_name, storage=storage,
                              pruner=sweep.spec.make_pruner())
    ran = 0
    while True:
        recover_interrupted(study)
        trials = claim_batch(sweep, study)
        if not trials:
            return ran
        with Heartbeat(storage, *(trial._trial_id for trial in trials)):
            outcomes = run_trials(sweep.spec, study, trials, sweep.dir)
        ran += len(trials)
        for trial, outcome in zip(trials, outcomes):
            say(f"[{sweep.study_name}] trial {trial.number} {outcome.describe(sweep.spec.metric)}")
        if bar is not None:
            bar.reached(verdicts(study))


def _worker_process(sweep: Sweep, workers: int, parent: int) -> None:
    _die_with(parent)
    # imported after the death signal is set (torch takes seconds to import): no orphan window
    from core.workers import start_worker

    start_worker(workers)
    quiet_optuna()
    work(sweep)


def quiet_optuna() -> None:
    """Optuna's info lines (a study created, each trial's result) off the console, as the other
    libraries' (core/console.py); the sweep prints its own line per trial."""
    if not verbose():
        optuna.logging.set_verbosity(optuna.logging.WARNING)


def _die_with(parent: int) -> None:
    """Linux: have the kernel kill this worker when the launcher dies, so no orphan keeps a trial."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # it died before prctl took effect
        os._exit(1)


def run_workers(sweep: Sweep, workers: int, bar: OverallBar | None = None) -> None:
    if workers == 1:
        work(sweep, bar)
        return
    context = multiprocessing.get_context("spawn")  # a fresh interpreter: no forked torch state
    procs = [context.Process(target=_worker_process, args=(sweep, workers, os.getpid()),
                             name=f"sweep-worker-{i}") for i in range(workers)]
    for proc in procs:
        proc.start()
    try:
        study = optuna.load_study(study_name=sweep.study_name,
                                  storage=open_storage(sweep.storage_url, create=False))
        for proc in procs:
            while proc.is_alive():
                proc.join(timeout=5)
                if bar is not None:  # the workers' progress, as the storage holds it
                    bar.reached(verdicts(study))
    except KeyboardInterrupt:  # Ctrl-C reached the workers too: they record their trials and stop
        for proc in procs:
            proc.join(timeout=60)
            if proc.is_alive():
                proc.kill()
        raise
    failed = [p.name for p in procs if p.exitcode != 0]
    if failed:
        raise RunError(f"{', '.join(failed)} stopped with an error (shown above); "
                       f"rerun the same command to finish the study")


def prepare(sweep: Sweep) -> optuna.Study:
    storage = open_storage(sweep.storage_url, create=True)
    study = open_study(sweep, storage)
    bind_folder(sweep, study)
    study.set_user_attr("trials", sweep.trials)
    for number in recover_interrupted(study):
        print(f"[{sweep.study_name}] trial {number} was interrupted (its worker died); "
              f"marked failed, it will be replaced", flush=True)
    return study


def run_sweep(spec: SweepSpec, storage_url: str, study_name: str, out: Path, trials: int,
              workers: int, population: int = 1) -> optuna.Study:
    """Run (or continue) the study until `trials` trials have a verdict."""
    sweep = Sweep(spec, storage_url, study_name, Path(out), trials, population)
    study = prepare(sweep)
    try:
        with OverallBar(f"study {study_name}", trials, min(verdicts(study), trials),
                        unit="trials") as bar:
            run_workers(sweep, workers, bar)
    except KeyboardInterrupt:
        raise RunError("interrupted; rerun the same command to finish the study") from None
    finally:
        sys.stdout.flush()
    return study
