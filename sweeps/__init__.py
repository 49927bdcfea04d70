"""Optuna sweeps: every trial a full `ntmbench train` run, tracked in W&B (README: Sweeps).

    spec.py     a sweep file (sweeps/<task>-<model>.yaml): fixed settings, search space, metric
    storage.py  the storage URL: SQLite file by default, PostgreSQL for several machines
    study.py    create the study once, recover dead workers' trials, claim and run to the budget
    trial.py    one trial: sample, train with pruning, record the outcome in Optuna and W&B
    status.py   the trials table, the best trial, the study's summary run in W&B
    command.py  `ntmbench sweep` and `ntmbench sweep-status`
"""
