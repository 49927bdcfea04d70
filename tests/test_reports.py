"""`ntmbench report`: tidy tables, figures and pages from short runs made here, the converge point on
a hand-made curve, sweep figures from an Optuna study made here, and index.html in a real browser."""

from __future__ import annotations

import html
import json
import math
import re
import shutil
import subprocess
from pathlib import Path

import matplotlib.image
import numpy as np
import optuna
import pandas as pd
import pytest
from optuna.distributions import FloatDistribution, IntDistribution

from bench.cli import main
from core.train import train
from conftest import tiny
from reports.collect import TABLE_COLUMNS, collect, variants
from reports.command import build_report
from reports.converge import median_with_never, sequences_to_converge
from reports.curves import on_common_grid
from reports.probes import Probe, representative
from reports.results import results_table
from test_training import wandb_records

CHROMIUM = Path("/usr/bin/chromium")
LSTM = {"layers": 1, "size": 8}
FIGURES = {"learning_curves", "generalization", "outputs_copy", "memory_copy", "sweep_history",
           "sweep_importance"}


def make_study(storage: str, name: str, model: str, trials: list[tuple[dict, float | None]]) -> None:
    spaces = {"lr": FloatDistribution(1e-5, 1e-1, log=True), "memory_size": IntDistribution(4, 128),
              "size": IntDistribution(4, 256)}
    study = optuna.create_study(study_name=name, storage=storage, direction="minimize")
    study.set_user_attr("model", model)
    for params, value in trials:
        states = optuna.trial.TrialState
        state = states.COMPLETE if value is not None else states.PRUNED
        study.add_trial(optuna.trial.create_trial(
            params=params, distributions={k: spaces[k] for k in params}, value=value, state=state,
            user_attrs={"seeds": "0,1"}))


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> dict:
    """Four short copy runs (ntm and lstm, seeds 0 and 1) and a SQLite file with three studies."""
    root = tmp_path_factory.mktemp("reports")
    for model in ("ntm", "lstm"):
        for seed in (0, 1):
            extra = {"model_options": LSTM} if model == "lstm" else {}
            train(tiny(root / "runs" / f"copy-{model}-seed{seed}", model=model, seed=seed, **extra))
    starting = root / "runs" / "copy-ntm-seed2"  # a run that has not logged anything yet
    starting.mkdir()
    shutil.copy(root / "runs" / "copy-ntm-seed0" / "config.yaml", starting / "config.yaml")
    storage = f"sqlite:///{root / 'sweeps.db'}"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    make_study(storage, "copy-ntm", "ntm", [({"lr": 1e-3, "memory_size": 16}, 5.0),
                                            ({"lr": 3e-3, "memory_size": 64}, 3.0),
                                            ({"lr": 1e-4, "memory_size": 32}, 4.0),
                                            ({"lr": 1e-2, "memory_size": 8}, None),
                                            ({"lr": 5e-3, "memory_size": 128}, 1.0)])
    make_study(storage, "copy-lstm", "lstm", [({"lr": 1e-3, "size": 64}, 9.0),
                                              ({"lr": 1e-2, "size": 128}, 7.0),
                                              ({"lr": 3e-4, "size": 32}, 8.0)])
    make_study(storage, "lonely", "ntm", [({"lr": 1e-3}, 2.0)])
    return {"root": root, "runs": root / "runs", "storage": storage}


@pytest.fixture(scope="module")
def report(made):
    return build_report([str(made["runs"])], ["copy-ntm", "copy-lstm"], made["storage"], None,
                        str(made["root"] / "out"))


def test_converge_point_on_a_hand_made_curve() -> None:
    curve = pd.DataFrame({"sequences": [4000, 1000, 3000, 2000],  # unsorted on purpose
                          "bit_errors": [0.2, 9.0, 0.05, 0.4]})
    assert sequences_to_converge(curve) == 3000  # first point below 0.1; the later rise is ignored
    assert sequences_to_converge(curve, threshold=0.5) == 2000
    assert math.isnan(sequences_to_converge(curve, threshold=0.05))  # never below 0.05
    at_threshold = pd.DataFrame({"sequences": [10, 20], "bit_errors": [0.1, 0.09]})
    assert sequences_to_converge(at_threshold) == 20  # strictly below
    # a seed that never converges counts as infinitely slow: never dropped from the median
    assert median_with_never(pd.Series([1000.0, math.nan, 3000.0])) == 3000
    assert math.isinf(median_with_never(pd.Series([1000.0, math.nan, math.nan])))


def test_results_table_aggregates_every_seed() -> None:
    rows = []
    for seed, errors in enumerate([[5.0, 0.05], [5.0, 0.5], [0.01, 0.0]]):
        rows += [{"run": f"r{seed}", "task": "copy", "variant": "ntm", "seed": seed, "split": "val",
                  "sequences": x, "bit_errors": e, "cost_bits": 10 * e + seed}
                 for x, e in zip([100.0, 200.0], errors)]
        rows.append({"run": f"r{seed}", "task": "copy", "variant": "ntm", "seed": seed,
                     "split": "test", "label": "len_030", "size": 30.0, "cost_bits": float(seed)})
    table = pd.DataFrame(rows).reindex(columns=[*TABLE_COLUMNS])
    (row,) = results_table(table).to_dict("records")
    assert (row["seeds"], row["converged"]) == (3, 2)
    assert row["seqs_to_converge"] == 200 and (row["seqs_min"], row["seqs_max"]) == (100, 200)
    assert (row["cost_bits"], row["cost_bits_min"], row["cost_bits_max"]) == (1.0, 0.0, 2.0)
    # the validation cost where each seed's curve ends (at 200): 0.5, 6.0 and 2.0
    assert (row["val_cost_bits"], row["val_cost_bits_min"], row["val_cost_bits_max"]) == (2.0, 0.5, 6.0)
    assert "val_optimal_cost_bits" not in row  # copy has no optimal estimator


def test_results_table_has_the_optimal_estimators_validation_cost() -> None:
    # n-grams: the optimal estimator's cost on the validation sequences, where each curve ends;
    # seed 1 logged it only at 100 (its last point that has it counts)
    rows = [{"run": f"r{seed}", "task": "ngrams", "variant": "ntm", "seed": seed, "split": "val",
             "sequences": x, "bit_errors": 50.0, "cost_bits": 150.0, "optimal_cost_bits": optimal}
            for seed, points in enumerate([[130.0, 132.0], [131.0, None], [133.0, 134.0]])
            for x, optimal in zip([100.0, 200.0], points)]
    table = pd.DataFrame(rows).reindex(columns=[*TABLE_COLUMNS])
    (row,) = results_table(table).to_dict("records")
    assert row["val_optimal_cost_bits"] == 132.0  # the median of 132, 131 and 134


def test_curves_share_points_without_extrapolating() -> None:
    curves = pd.DataFrame({"run": ["a", "a", "a", "b", "b"], "variant": "ntm", "seed": [0, 0, 0, 1, 1],
                           "sequences": [10.0, 20.0, 30.0, 15.0, 20.0],
                           "cost_bits": [9.0, 5.0, 1.0, 8.0, 6.0]})
    grid = on_common_grid(curves).set_index(["run", "sequences"])["cost_bits"]
    assert grid["a"].to_dict() == {10.0: 9.0, 15.0: 7.0, 20.0: 5.0, 30.0: 1.0}
    assert grid["b"].to_dict() == {15.0: 8.0, 20.0: 6.0}  # b ends at 20: no value at 30


def test_only_seeds_are_aggregated_as_seeds() -> None:
    base = {"task": "copy", "model": "ntm", "lr": 0.01, "model_options": {"heads": 1}, "seed": 0}
    configs = [base, {**base, "seed": 1}, {**base, "model_options": {"heads": 2}},
               {**base, "model": "lstm"}]
    assert variants(configs) == ["ntm (heads=1)", "ntm (heads=1)", "ntm (heads=2)", "lstm"]


def test_figures_show_the_checkpoint_the_test_scored(tmp_path) -> None:
    train(tiny(tmp_path / "best", max_steps=12, val_every=3, test_on="best"))
    train(tiny(tmp_path / "last", max_steps=12, val_every=3))
    runs = collect([tmp_path]).runs.set_index("run")
    assert runs.loc["best", "checkpoint"] == str(tmp_path / "best/checkpoints/best.ckpt")
    assert runs.loc["last", "checkpoint"] == str(tmp_path / "last/checkpoints/last.ckpt")
    assert runs["tested"].to_dict() == {"best": "best", "last": "last"}


@pytest.mark.parametrize("tested, seed", [("last", 2), ("best", 0)])
def test_the_figures_seed_is_the_median_by_its_tested_checkpoints_cost(tested, seed) -> None:
    curves = {0: [5.0, 1.0], 1: [0.5, 3.0], 2: [2.0, 2.0]}  # final 1, 3, 2; lowest 1, 0.5, 2
    runs = pd.DataFrame([{"run": f"r{s}", "task": "copy", "variant": "ntm", "seed": s,
                          "checkpoint": f"r{s}.ckpt", "tested": tested} for s in curves])
    table = pd.DataFrame([{"run": f"r{s}", "split": "val", "step": step, "cost_bits": cost}
                          for s, costs in curves.items() for step, cost in enumerate(costs)])
    picked = representative(runs, table)
    assert picked["seed"].tolist() == [seed] and picked["seeds"].tolist() == [3]


def test_tidy_table_has_a_row_per_run_step_and_length(made, report) -> None:
    table = pd.read_csv(report.table)
    assert list(table.columns) == list(TABLE_COLUMNS)
    expected = 0
    for run in sorted(m.parent.parent for m in made["runs"].glob("*/csv/metrics.csv")):
        metrics = pd.read_csv(run / "csv" / "metrics.csv")
        train_steps = metrics.dropna(subset=["train/cost_bits"])["step"].nunique()
        val = metrics.dropna(subset=["val/cost_bits"])
        tests = pd.read_csv(run / "test_metrics.csv")
        expected += train_steps + len(val) + len(tests)
        rows = table[table["run"] == run.name]
        assert rows[rows["split"] == "val"]["cost_bits"].tolist() == pytest.approx(
            val["val/cost_bits"].tolist())
        got = rows[rows["split"] == "test"].set_index("label")
        want = tests.set_index("label")["cost_bits"].to_dict()
        assert got["cost_bits"].to_dict() == pytest.approx(want)
        assert got["size"].tolist() == [6, 9] and set(got["variant"]) == {run.name.split("-")[1]}
    assert len(table) == expected == 4 * (2 + 2 + 2)  # 6 steps: 2 train logs, 2 validations, 2 lengths
    # x-axis: sequences seen = (step + 1) x batch size, as train/sequences logs it
    val = table[(table["split"] == "val")]
    assert (val["sequences"] == (val["step"] + 1) * 4).all()
    results = pd.read_csv(report.out / "results.csv")
    assert set(results["variant"]) == {"ntm", "lstm"} and set(results["seeds"]) == {2}


def test_every_figure_is_drawn_labelled_and_not_blank(report) -> None:
    assert {f.name for f in report.figures} == FIGURES
    for figure in report.figures:
        assert figure.pdf.read_bytes()[:5] == b"%PDF-"
        pixels = matplotlib.image.imread(figure.png)[..., :3]
        assert pixels.shape[0] > 300 and pixels.shape[1] > 300
        assert pixels.std() > 0.05, f"{figure.name} looks blank"
        assert (pixels.mean(axis=-1) < 0.9).mean() > 0.02, f"{figure.name} is nearly all white"
        assert figure.axis_labels and all(x and y for x, y in figure.axis_labels), figure.name
        assert "seed" in figure.caption, figure.name  # the seed count is printed on every figure
    curves = next(f for f in report.figures if f.name == "learning_curves")
    assert "ntm 2" in curves.caption and "lstm 2" in curves.caption


def test_pages_link_every_figure_and_the_sweep_table(made, report) -> None:
    page = report.index.read_text()
    images = re.findall(r"<img src='data:image/png;base64,([^']+)'", page)
    assert len(images) == len(FIGURES)
    for href in re.findall(r"href='([^']+)'", page):
        assert (report.out / href).is_file(), href
    assert "sequences to bit errors &lt; 0.1" in page and "cost len_009" in page
    assert "copy-ntm-seed2: no csv/metrics.csv yet" in page  # skipped, and said so
    summary = report.summary.read_text()
    for name in FIGURES:
        assert f"](figures/{name}.png)" in summary
        assert (report.out / "figures" / f"{name}.pdf").is_file()
    trials = pd.read_csv(report.out / "sweep_trials.csv")
    ntm = trials[trials["study"] == "copy-ntm"]
    assert ntm["best_so_far"].tolist() == [5.0, 3.0, 3.0, 3.0, 1.0]  # a pruned trial keeps the best
    importances = pd.read_csv(report.out / "sweep_importances.csv")
    assert set(importances["param"]) == {"lr", "memory_size", "size"}
    assert importances.groupby("study")["importance"].sum().tolist() == pytest.approx([1.0, 1.0])


def test_index_html_shows_every_image_in_chromium(report, tmp_path: Path) -> None:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is absent (the CI step `apt-get install -y chromium` failed or "
                    f"did not run): the browser test cannot run here")
    # the report itself plus a probe script, and one broken image as a control
    probe = report.out / "_probe.html"
    script = ("<img id='control' src='no-such-figure.png'><script>"
              "window.addEventListener('load', () => document.body.setAttribute('data-probe',"
              " JSON.stringify([...document.images].map(i => [i.id, i.complete, i.naturalWidth]))));"
              "</script></body>")
    probe.write_text(report.index.read_text().replace("</body>", script))
    try:
        dom = subprocess.run(
            [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=10000",
             "--dump-dom", probe.resolve().as_uri()],
            capture_output=True, text=True, timeout=120, check=True).stdout
    finally:
        probe.unlink()
    found = re.search(r'data-probe="([^"]*)"', dom)
    assert found, f"the page's script did not run: {dom[:300]}"
    images = json.loads(html.unescape(found.group(1)))
    assert images[-1] == ["control", True, 0]  # a broken image is seen as broken
    assert len(images) == len(FIGURES) + 1
    assert all(complete and width > 300 for _, complete, width in images[:-1]), images


def test_report_command_draws_a_sweep_alone_and_notes_missing_importances(
    made, tmp_path, capsys
) -> None:
    out = tmp_path / "sweep"
    assert main(["report", "--study", "lonely", "--storage", made["storage"], "--out", str(out)]) == 0
    assert sorted(p.name for p in (out / "figures").iterdir()) == ["sweep_history.pdf",
                                                                  "sweep_history.png"]
    page = (out / "index.html").read_text()
    assert "parameter importances need at least 2 finished trials (it has 1)" in page
    assert "importances need at least 2" in capsys.readouterr().out


class OfflineRun:
    """A W&B run as the public API gives it (`run.name`, `run.id`, `run.config`,
    `run.scan_history()`), read from the offline `.wandb` file that W&B itself wrote during
    training: the report's W&B path is checked against W&B's records, not against metrics.csv."""

    def __init__(self, run_dir: Path) -> None:
        records = wandb_records(run_dir)
        (run,) = [r["run"] for r in records if r["type"] == "run"]
        self.name, self.id = run["display_name"], run["run_id"]
        self.config = dict(run["config"]["update"])
        for r in records:  # later config updates, as the API merges them
            if r["type"] == "config":
                self.config.update(r["config"]["update"])
        self.rows = [r["history"]["item"] for r in records if r["type"] == "history"]

    def scan_history(self):
        return iter(self.rows)


def test_wandb_runs_give_the_same_rows_as_local_files(made) -> None:
    run_dir = made["runs"] / "copy-ntm-seed0"

    class Api:
        def runs(self, project):
            assert project == "me/ntmbench"
            return [OfflineRun(run_dir)]

    remote = collect(wandb_project="me/ntmbench", api=Api()).table
    local = collect([run_dir]).table
    keep = ["split", "step", "sequences", "label", "size", "cost_bits", "bit_errors"]
    assert remote["run"].unique().tolist() == ["wandb:copy-ntm-seed0"]
    assert (remote["split"] == "val").sum() == 2 and (remote["split"] == "test").sum() == 2
    pd.testing.assert_frame_equal(remote[keep].reset_index(drop=True),
                                  local[keep].reset_index(drop=True), check_dtype=False)


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["--runs", "{empty}"], "no runs found in {empty}"),
        (["--runs", "{root}/nowhere"], "runs folder {root}/nowhere does not exist"),
        (["--runs", "{root}/sweeps.db"], "is not a folder"),
        (["--runs", "{bad}"], "cannot read {bad}/config.yaml"),
        (["--runs", "{other}"], "no runs found in {other} (a run folder holds config.yaml and "
                                "csv/metrics.csv, as ntmbench train writes them); skipped "
                                "{other}/sweep: its config.yaml names no task and model"),
        (["--runs", "{runs}", "--study", "nope", "--storage", "{storage}"],
         "study 'nope' not found in {storage}; it holds: copy-lstm, copy-ntm, lonely"),
        (["--study", "x", "--storage", "sqlite:///{root}/none.db"], "Optuna storage sqlite:///"),
        (["--study", "x"], "--study needs --storage"),
        (["--runs", "{runs}", "--threshold", "0"], "--threshold must be > 0"),
        (["--runs", "{runs}", "--wandb-project", "a/b", "--threshold", "x"], "invalid float value"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(made, tmp_path, capsys, argv, fragment) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "config.yaml").write_text("task: [unclosed\n")
    (tmp_path / "other" / "sweep").mkdir(parents=True)
    (tmp_path / "other" / "sweep" / "config.yaml").write_text("direction: minimize\n")
    places = {"root": made["root"], "runs": made["runs"], "storage": made["storage"],
              "empty": tmp_path / "empty", "bad": tmp_path / "bad", "other": tmp_path / "other"}
    out = tmp_path / "out"
    assert main(["report", *[a.format(**places) for a in argv], "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and fragment.format(**places) in err, err
    assert not out.exists()
    assert not (made["root"] / "none.db").exists()  # a missing SQLite file is not created


def test_unreadable_runs_folder_is_one_line(made, tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setattr("reports.collect.os.access", lambda path, mode: False)  # root reads all
    assert main(["report", "--runs", str(made["runs"]), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"cannot read runs folder {made['runs']}" in err


def test_parquet_table_or_a_one_line_hint(made, tmp_path, capsys) -> None:
    out = tmp_path / "out"
    argv = ["report", "--runs", str(made["runs"] / "copy-lstm-seed0"), "--table-format", "parquet",
            "--out", str(out)]
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        assert main(argv) == 2
        assert "needs pyarrow: pip install -e '.[parquet]'" in capsys.readouterr().err
        return
    assert main(argv) == 0
    table = pd.read_parquet(out / "table.parquet")
    assert list(table.columns) == list(TABLE_COLUMNS) and len(table) == 6


def test_every_task_gets_its_figures(tmp_path) -> None:
    """The four other tasks (an NTM with a feedforward controller each): their shapes, training
    ranges and the n-grams optimal cost reach the figures and the results."""
    short = {"repeat_copy": {"max_length": 2, "max_repeats": 2, "test_pairs": [[3, 2], [2, 3]]},
             "associative_recall": {"max_items": 3, "test_items": [4]},
             "ngrams": {"train_length": 12, "test_lengths": [20]},
             "priority_sort": {"train_n_in": 5, "train_n_out": 3, "test_pairs": [[6, 4]]}}
    for task, options in short.items():
        train(tiny(tmp_path / "runs" / task, task=task, model="ntm-ff", task_options=options,
                   max_steps=3, val_every=3))
    report = build_report([str(tmp_path / "runs")], [], None, None, str(tmp_path / "out"), shapes=1)
    names = {f.name for f in report.figures}
    assert names == {"learning_curves", "generalization", "priority_writes_priority_sort",
                     *(f"{kind}_{task}" for kind in ("outputs", "memory") for task in short)}
    assert all(x and y for f in report.figures for x, y in f.axis_labels)
    results = pd.read_csv(report.out / "results.csv").set_index(["task", "label"])
    assert set(results.loc["repeat_copy"]["size"]) == {6.0}  # 3x2 and 2x3: same size, two rows
    assert results.loc[("ngrams", "len_0020"), "optimal_cost_bits"] > 0
    assert results.loc[("priority_sort", "in_006_out_004"), "size"] == 6
    # repeat copy's end-marker table: the largest training shape, then each test shape
    markers = pd.read_csv(report.out / "end_marker.csv")
    assert list(markers["label"]) == ["len_002_rep_02", "len_003_rep_02", "len_002_rep_03"]
    assert markers[["data_errors", "marker_errors", "never"]].notna().all().all()
    assert "repeat_copy: the end marker" in (report.out / "summary.md").read_text()


def test_priority_sorts_write_locations_are_read_per_input_vector() -> None:
    # two sequences of a hand-made probe: 3 and 2 input vectors, the write head's largest weight
    # at a location that rises with the priority (and a read head that does not count)
    from reports.priority_writes import rank_correlation, write_points

    def sequence(priorities, spots, n=6):
        steps = len(priorities) + 3
        inputs = np.zeros((1, steps, 4))  # width 2: bits, priority, delimiter
        inputs[0, :len(priorities), 2] = priorities
        inputs[0, len(priorities), 3] = 1.0
        writes = np.full((1, steps, 1, n), 0.01)
        for t, spot in enumerate(spots):
            writes[0, t, 0, spot] = 0.9
        return {"inputs": inputs}, {"write_weights": writes, "read_weights": writes * 0}

    (b1, a1), (b2, a2) = sequence([0.5, -0.2, 0.9], [3, 1, 5]), sequence([-0.8, 0.1], [0, 2])
    probe = Probe("priority_sort", "ntm", "r", 0, 1, ["a", "b"], [b1, b2], [a1, a2])
    priority, location = write_points(probe)
    assert priority.tolist() == pytest.approx([0.5, -0.2, 0.9, -0.8, 0.1])
    assert location.tolist() == [3, 1, 5, 0, 2]
    assert rank_correlation(priority, location) == pytest.approx(1.0)
    assert rank_correlation(priority, -location) == pytest.approx(-1.0)


def test_the_report_is_a_wandb_run_of_its_figures_and_tables(made, tmp_path, capsys) -> None:
    out = tmp_path / "logged"
    assert main(["report", "--runs", str(made["runs"]), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    (folder,) = out.glob("wandb/offline-run-*")
    assert f"W&B: offline run {folder}; upload it with: wandb sync {folder}" in printed
    records = wandb_records(out)
    (run,) = [r["run"] for r in records if r["type"] == "run"]
    assert run["job_type"] == "report" and run["project"] == "ntmbench"
    assert run["display_name"] == "report-logged" and run["tags"] == ["report", "copy"]
    assert run["config"]["update"]["command"] == f"ntmbench report --runs {made['runs']} --out {out}"
    (item,) = [r["history"]["item"] for r in records if r["type"] == "history"]
    drawn = {p.stem for p in (out / "figures").glob("*.png")}
    assert len(drawn) >= 3
    # W&B's history flattens a media value: `figures/<name>._type` and the like
    assert {k for k in item if k.startswith("figures/") and k.endswith("._type")} == {
        f"figures/{name}._type" for name in drawn}
    assert {item[f"figures/{name}._type"] for name in drawn} == {"image-file"}
    assert {k[:-len("._type")]: item[k] for k in item if k.startswith("tables/") and k.endswith("._type")} \
        == {"tables/results": "table-file", "tables/hardware": "table-file"}
    (table_file,) = folder.glob("files/media/table/tables/results_*.table.json")
    stored = json.loads(table_file.read_text())
    on_disk = pd.read_csv(out / "results.csv")
    assert stored["columns"] == on_disk.columns.tolist() and len(stored["data"]) == len(on_disk)


def test_a_report_with_wandb_disabled_writes_no_wandb_files(made, tmp_path, capsys) -> None:
    out = tmp_path / "quiet"
    assert main(["report", "--runs", str(made["runs"]), "--out", str(out),
                 "--wandb-mode", "disabled"]) == 0
    assert not (out / "wandb").exists() and "W&B" not in capsys.readouterr().out
