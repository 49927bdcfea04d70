"""`ntmbench wandb-workspace`: the saved W&B views, built offline (wandb-workspaces builds the
views without network), checked for their run sets, sections and panels, as the objects and as
the JSON W&B would store."""

from __future__ import annotations

import json

import pytest
import wandb_workspaces.reports.v2 as wr
import wandb_workspaces.workspaces as ws

from bench.cli import main
from bench.workspace_command import SWEEP_FILES, sampled_params
from datamodules.registry import TASKS
from reports.workspace import build_views


def test_a_view_per_task_and_one_for_the_sweeps() -> None:
    views = build_views("me", "ntmbench", ["copy", "ngrams"], ["lr", "model_options.memory_size"])
    assert [v.name for v in views] == ["ntmbench: copy", "ntmbench: ngrams", "ntmbench: sweeps"]
    copy, _, sweeps = views
    assert (copy.entity, copy.project) == ("me", "ntmbench")
    assert copy.runset_settings.filters == ("Config(\"task\") == 'copy' and "
                                            "Metric(\"JobType\") in ['train', 'trial']")
    assert [g.name for g in copy.runset_settings.groupby] == ["Group"]  # <plan>/<task>/<model>
    assert [s.name for s in copy.sections] == ["learning curves", "test per length"]
    curves = copy.sections[0].panels
    assert [(p.x, p.y) for p in curves] == [("train/sequences", ["val/cost_bits"]),
                                            ("train/sequences", ["val/bit_errors"]),
                                            ("val/wall_s", ["val/cost_bits"])]
    assert {(p.groupby, p.groupby_aggfunc, p.groupby_rangefunc) for p in curves} == {
        ("Group", "median", "minmax")}  # one line per experiment, its seeds as the band
    cost, errors, table, bars = copy.sections[1].panels
    for chart, metric in ((cost, "cost_bits"), (errors, "bit_errors")):
        assert isinstance(chart, wr.CustomChart) and chart.chart_name == "wandb/line/v0"
        assert chart.query == {"summaryTable": {"tableKey": "test/results"}}
        assert chart.chart_fields == {"x": "size", "y": metric, "stroke": "model"}
    assert isinstance(table, wr.WeavePanelSummaryTable) and table.table_name == "test/results"
    assert isinstance(bars, wr.BarPlot) and bars.metrics == ["converged_at_sequences"]
    assert sweeps.runset_settings.filters == "Metric(\"JobType\") == 'trial'"
    (section,) = sweeps.sections
    parallel, importance, trials = section.panels
    assert isinstance(parallel, wr.ParallelCoordinatesPlot)
    assert [c.metric for c in parallel.columns] == [wr.Config("lr"), wr.Config("model_options.memory_size"),
                                                   wr.SummaryMetric("val/cost_bits")]
    assert isinstance(importance, wr.ParameterImportancePlot)
    assert importance.with_respect_to == "val/cost_bits"
    assert isinstance(trials, wr.LinePlot) and trials.groupby is None


def test_the_sweep_panels_cover_every_value_the_sweep_files_sample() -> None:
    params = sampled_params(sorted(SWEEP_FILES.glob("*.yaml")))
    assert {"lr", "optimizer", "batch_size", "model_options.memory_size",
            "model_options.controller_size"} <= set(params)
    assert len(params) == len(set(params)) and "seed" not in params


def views_json(text: str) -> list[dict]:
    decoder, found, at = json.JSONDecoder(), [], 0
    while at < len(text.rstrip()):
        value, at = decoder.raw_decode(text, at)
        found.append(value)
        while at < len(text) and text[at].isspace():
            at += 1
    return found


def test_dry_run_prints_the_views_and_their_wandb_json(capsys) -> None:
    assert main(["wandb-workspace", "--entity", "me", "--project", "p", "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert text.count("view 'ntmbench: ") == len(TASKS) + 1 and "section 'learning curves'" in text
    assert main(["wandb-workspace", "--entity", "me", "--project", "p", "--tasks", "copy",
                 "--dry-run", "--json"]) == 0
    copy, sweeps = views_json(capsys.readouterr().out)
    assert (copy["entity"], copy["project"], copy["display_name"]) == ("me", "p", "ntmbench: copy")
    sections = copy["spec"]["section"]["panel_bank_config"]["sections"]
    assert [s["name"] for s in sections] == ["learning curves", "test per length"]
    plot = sections[0]["panels"][0]
    assert plot["view_type"] == "Run History Line Plot"
    assert (plot["config"]["x_axis"], plot["config"]["metrics"]) == ("train/sequences", ["val/cost_bits"])
    (sweep,) = sweeps["spec"]["section"]["panel_bank_config"]["sections"]
    assert [p["view_type"] for p in sweep["panels"]] == ["Parallel Coordinates Plot",
                                                          "Parameter Importance", "Run History Line Plot"]


def test_an_unknown_task_or_a_failed_save_is_one_line(capsys, monkeypatch) -> None:
    assert main(["wandb-workspace", "--entity", "me", "--tasks", "cpy", "--dry-run"]) == 2
    assert capsys.readouterr().err == ("ntmbench: error: unknown task 'cpy' in --tasks; the tasks: "
                                       f"{', '.join(TASKS)}\n")

    def refused(self):
        raise PermissionError("api_key not configured (no-tty)")

    monkeypatch.setattr(ws.Workspace, "save", refused)
    assert main(["wandb-workspace", "--entity", "me", "--tasks", "copy"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot save the W&B view 'ntmbench: copy' to me/ntmbench" in err
    assert "wandb login" in err


@pytest.mark.parametrize("flags", [["--project", "p"], []])
def test_the_entity_is_required(flags, capsys) -> None:
    assert main(["wandb-workspace", *flags, "--dry-run"]) == 2
    assert "--entity" in capsys.readouterr().err
