"""`ntmbench sweep` and `ntmbench sweep-status`: arguments in, a study out (bench/cli.py parses)."""

from __future__ import annotations

import argparse
from pathlib import Path

import optuna

from core.errors import ConfigError

from .spec import STUDY_NAME, SweepSpec
from .status import print_status, write_summary
from .storage import check_url, default_url, open_storage, redact
from .study import quiet_optuna, run_sweep


def sweep_command(args: argparse.Namespace) -> int:
    quiet_optuna()
    spec = SweepSpec.load(args.config, dict(args.set or []))  # --set KEY=VALUE pairs
    trials = spec.trials if args.trials is None else args.trials
    storage = args.storage or default_url(args.out)
    check_url(storage)
    name = args.study or spec.study
    if not STUDY_NAME.match(name):
        raise ConfigError(f"--study {name!r}: use only letters, digits, '.', '_' and '-' "
                          f"(it names a folder)")
    print(f"[{name}] {spec.task} / {spec.model}: {trials} trials, {args.workers} worker(s), "
          f"storage {redact(storage)}, runs in {Path(args.out) / name}", flush=True)
    study = run_sweep(spec, storage, name, Path(args.out), trials, args.workers, args.population)
    print_status(study, spec.metric)
    info = {"task": spec.task, "model": spec.model, "metric": spec.metric,
            "direction": spec.direction, "trials": trials, "sweep_file": str(args.config),
            "storage": redact(storage), "space": {p.name: p.describe() for p in spec.space}}
    if study.trials:
        write_summary(study, Path(args.out) / name, spec.base, info)
    return 0


def status_command(args: argparse.Namespace) -> int:
    name = args.study or (SweepSpec.load(args.config).study if args.config else None)
    url = args.storage or default_url(args.out)
    storage = open_storage(url, create=False)
    names = optuna.get_all_study_names(storage)
    if name is None or name not in names:
        known = ", ".join(sorted(names)) or "none"
        what = f"no study {name!r}" if name else "name a study with --study or --config"
        raise ConfigError(f"{what} in {redact(url)}; studies there: {known}")
    print_status(optuna.load_study(study_name=name, storage=storage))
    return 0
