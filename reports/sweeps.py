"""Sweep figures from Optuna studies: the best value so far per model against trials, and each
study's parameter importances (PED-ANOVA, Optuna's default evaluator, which needs no
scikit-learn). A study with too few finished trials, or whose
parameters never vary, gets a note in the report instead of a figure.

The model of a trial is its `model` parameter, else its `model` user attribute, else the study's,
else the study's name (one study per model is the plain case).
"""

from __future__ import annotations

import math
from pathlib import Path

import optuna
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from core.errors import RunError, first_line

from .figures import FigureFile, handles, note, save, style


def storage_for(url: str):
    """An RDB URL (sqlite:///sweeps.db, postgresql+psycopg2://...) or a journal file path."""
    if "://" not in url:
        if not Path(url).is_file():
            raise RunError(f"Optuna storage {url} not found; pass a URL such as "
                           f"sqlite:///sweeps.db or an existing journal file")
        return JournalStorage(JournalFileBackend(url))
    if url.startswith("sqlite:///") and not Path(url[len("sqlite:///"):]).is_file():
        # optuna would create an empty database there: refuse instead
        raise RunError(f"Optuna storage {url} not found (no file {url[len('sqlite:///'):]})")
    return url


def load_studies(names: list[str], url: str) -> list[optuna.Study]:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = storage_for(url)
    try:
        known = optuna.get_all_study_names(storage=storage)
    except Exception as error:  # SQLAlchemy and drivers raise many kinds for a bad URL
        raise RunError(f"cannot open Optuna storage {url} ({first_line(error)})") from None
    studies = []
    for name in names:
        if name not in known:
            raise RunError(f"study {name!r} not found in {url}; it holds: "
                           f"{', '.join(sorted(known)) or 'no studies'}")
        studies.append(optuna.load_study(study_name=name, storage=storage))
    return studies


def model_of(trial: optuna.trial.FrozenTrial, study: optuna.Study) -> str:
    for source in (trial.params, trial.user_attrs, study.user_attrs):
        if "model" in source:
            return str(source["model"])
    return study.study_name


def trials_table(studies: list[optuna.Study]) -> pd.DataFrame:
    """One row per trial: study, model, number, state, value, best so far (per study and model,
    in the study's direction), seeds (if recorded), and every parameter as `param.NAME`."""
    rows = []
    for study in studies:
        single = len(study.directions) == 1
        for trial in study.get_trials(deepcopy=False):
            seeds = trial.user_attrs.get("seeds", trial.params.get("seed",
                                         trial.user_attrs.get("seed")))
            rows.append({"study": study.study_name, "model": model_of(trial, study),
                         "number": trial.number, "state": trial.state.name,
                         "value": trial.value if single and trial.value is not None else math.nan,
                         "direction": study.direction.name.lower() if single else "multi",
                         "seeds": "" if seeds is None else str(seeds),
                         **{f"param.{k}": v for k, v in trial.params.items()}})
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    table = table.sort_values(["study", "model", "number"], ignore_index=True)
    best = []
    for (_, _), group in table.groupby(["study", "model"], sort=False):
        values = group["value"].where(group["state"] == "COMPLETE")
        ordered = values.cummax() if group["direction"].iloc[0] == "maximize" else values.cummin()
        best.extend(ordered.ffill().tolist())  # a failed or pruned trial keeps the best so far
    table["best_so_far"] = best
    return table


def history_figure(trials: pd.DataFrame, out_dir: Path) -> FigureFile | None:
    done = trials[trials["state"] == "COMPLETE"].dropna(subset=["value"])
    if done.empty:
        return None
    many = trials["study"].nunique() > 1 and trials.groupby("study")["model"].nunique().max() > 1
    curve = trials["study"] + ": " + trials["model"] if many else trials["model"]
    trials = trials.assign(curve=curve)
    curves = sorted(trials["curve"].unique())
    colors = dict(zip(curves, sns.color_palette("colorblind", len(curves))))
    with style():
        fig = Figure(figsize=(7, 4.4), layout="constrained")
        ax = fig.subplots()
        for curve in curves:
            group = trials[trials["curve"] == curve]
            finished = group[group["state"] == "COMPLETE"]
            ax.scatter(finished["number"] + 1, finished["value"], s=14, alpha=0.35,
                       color=colors[curve])
            ax.step(group["number"] + 1, group["best_so_far"], where="post", color=colors[curve],
                    label=f"{curve} ({len(finished)} of {len(group)} trials finished)")
        direction = done["direction"].iloc[0]
        ax.set_xlabel("trials run")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(f"objective ({direction}; line: best so far)")
        ax.set_title("Sweeps: best value per model against trials")
        seeds = sorted(s for s in trials["seeds"].unique() if s)
        text = (f"{len(trials)} trials in {trials['study'].nunique()} study(ies); dots: finished "
                f"trials; seeds per trial: {', '.join(seeds) or 'not recorded by the study'}")
        note(fig, text, handles([ax]))
    return save(fig, out_dir, "sweep_history", "Sweeps: best value against trials",
                "The best objective value so far per model against the number of trials. " + text)


def importances(studies: list[optuna.Study]) -> tuple[pd.DataFrame, list[str]]:
    """Long table (study, param, importance) and a note for every study that has none."""
    rows, notes = [], []
    for study in studies:
        if len(study.directions) > 1:
            notes.append(f"study {study.study_name}: multi-objective, no parameter importances")
            continue
        finished = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        if len(finished) < 2:
            notes.append(f"study {study.study_name}: parameter importances need at least 2 "
                         f"finished trials (it has {len(finished)})")
            continue
        try:
            found = optuna.importance.get_param_importances(
                study, evaluator=optuna.importance.PedAnovaImportanceEvaluator())
        except (RuntimeError, ValueError) as error:
            notes.append(f"study {study.study_name}: no parameter importances ({first_line(error)})")
            continue
        if not found:
            notes.append(f"study {study.study_name}: no parameter varies across its finished "
                         f"trials, so there are no importances")
        rows += [{"study": study.study_name, "param": k, "importance": v} for k, v in found.items()]
    return pd.DataFrame(rows, columns=["study", "param", "importance"]), notes


def importance_figure(table: pd.DataFrame, trials: pd.DataFrame, out_dir: Path) -> FigureFile | None:
    if table.empty:
        return None
    studies = sorted(table["study"].unique())
    with style():
        fig = Figure(figsize=(5.5 * len(studies), 0.45 * table.groupby("study").size().max() + 2.2),
                     layout="constrained")
        axes = fig.subplots(1, len(studies), squeeze=False)[0]
        for ax, study in zip(axes, studies):
            rows = table[table["study"] == study].sort_values("importance", ascending=False)
            sns.barplot(data=rows, x="importance", y="param", ax=ax, color="C0")
            finished = ((trials["study"] == study) & (trials["state"] == "COMPLETE")).sum()
            ax.set_title(f"{study} ({finished} finished trials)", fontsize=10)
            ax.set_xlabel("importance (PED-ANOVA, sums to 1)")
            ax.set_ylabel("parameter")
        seeds = sorted(s for s in trials["seeds"].unique() if s)
        text = ("Parameter importances from Optuna's PED-ANOVA evaluator on finished trials; seeds "
                f"per trial: {', '.join(seeds) or 'not recorded by the study'}.")
        note(fig, text)
    return save(fig, out_dir, "sweep_importance", "Sweeps: parameter importances", text)
