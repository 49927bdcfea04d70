"""Saved W&B views for comparing runs (`ntmbench wandb-workspace`), built with `wandb-workspaces`.

W&B panels read the run set of their view, and a view has one run set: no panel or section of a
view can show only one task's runs. So each task gets a view of its own, filtered to its runs,
and the sweeps one more:

    ntmbench: copy       runs of task copy (job types train and trial), grouped by W&B group
                         (<plan-vN | study>/<task>/<model>: one experiment's seeds, one line)
      learning curves    validation cost and bit errors against sequences seen (the paper's
                         x-axis), and cost against training seconds: median line, min-max band
      test per length    test cost and bit errors against test size (from the runs'
                         test/results tables), the tables, sequences to converge
    ntmbench: sweeps     trials (job type trial), one line each
      sweep              parallel coordinates of the sampled values and the trial's best
                         validation cost; the parameters' importance for it; the trials' curves

Building needs no network (`--dry-run` prints the views); saving needs a W&B login.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import wandb_workspaces.reports.v2 as wr
import wandb_workspaces.workspaces as ws

OBJECTIVE = "val/cost_bits"  # its summary is the minimum (core/wandb_run.py): a trial's best
SEQUENCES = "train/sequences"


def curve(title: str, y: str, x: str = SEQUENCES, x_title: str = "sequences seen",
          log_y: bool | None = None) -> wr.LinePlot:
    """A grouped learning curve: the median over a group's seeds, the band from lowest to highest."""
    return wr.LinePlot(title=title, x=x, y=[y], title_x=x_title, title_y=y, log_y=log_y,
                       groupby="Group", groupby_aggfunc="median", groupby_rangefunc="minmax")


def test_plot(task: str, metric: str, title: str) -> wr.CustomChart:
    """`metric` against the test shape's size, from the runs' test/results tables (W&B's line
    preset, the one `wandb.plot.line` draws each run's with), a line per model."""
    chart = wr.CustomChart.from_table("test/results",
                                      chart_fields={"x": "size", "y": metric, "stroke": "model"},
                                      chart_strings={"title": f"{task}: {title} against test size"})
    chart.chart_name = "wandb/line/v0"
    return chart


def task_view(entity: str, project: str, task: str) -> ws.Workspace:
    learning = ws.Section(name="learning curves", is_open=True, panels=[
        curve(f"{task}: validation cost per sequence (bits)", OBJECTIVE),
        curve(f"{task}: validation bit errors per sequence", "val/bit_errors", log_y=True),
        curve(f"{task}: validation cost against training seconds", OBJECTIVE, x="val/wall_s",
              x_title="training seconds"),
    ])
    tests = ws.Section(name="test per length", is_open=True, panels=[
        test_plot(task, "cost_bits", "test cost per sequence (bits)"),
        test_plot(task, "bit_errors", "test bit errors per sequence"),
        wr.WeavePanelSummaryTable(table_name="test/results", layout=wr.Layout(w=16, h=10)),
        wr.BarPlot(title=f"{task}: sequences to < 0.1 bit errors", metrics=["converged_at_sequences"],
                   groupby="Group", groupby_aggfunc="median", groupby_rangefunc="minmax"),
    ])
    return ws.Workspace(
        entity=entity, project=project, name=f"ntmbench: {task}", sections=[learning, tests],
        settings=ws.WorkspaceSettings(x_axis=SEQUENCES),
        runset_settings=ws.RunsetSettings(
            filters=ws.And(ws.Config("task") == task, ws.Metric("JobType").isin(["train", "trial"])),
            groupby=[ws.Metric("Group")]))


def sweep_view(entity: str, project: str, params: Sequence[str]) -> ws.Workspace:
    """`params`: the sampled values (RunConfig keys such as lr, model_options.memory_size)."""
    columns = [wr.ParallelCoordinatesPlotColumn(metric=wr.Config(p)) for p in params]
    columns.append(wr.ParallelCoordinatesPlotColumn(metric=wr.SummaryMetric(OBJECTIVE),
                                                    display_name="best val cost (bits)"))
    section = ws.Section(name="sweep", is_open=True, panels=[
        wr.ParallelCoordinatesPlot(title="sampled values and the best validation cost",
                                   columns=columns, layout=wr.Layout(w=24, h=8)),
        wr.ParameterImportancePlot(with_respect_to=OBJECTIVE),
        wr.LinePlot(title="trials: validation cost per sequence (bits)", x=SEQUENCES, y=[OBJECTIVE],
                    title_x="sequences seen"),
    ])
    return ws.Workspace(
        entity=entity, project=project, name="ntmbench: sweeps", sections=[section],
        settings=ws.WorkspaceSettings(x_axis=SEQUENCES),
        runset_settings=ws.RunsetSettings(filters=ws.And(ws.Metric("JobType") == "trial")))


def build_views(entity: str, project: str, tasks: Sequence[str],
                params: Sequence[str]) -> list[ws.Workspace]:
    """One view per task, then the sweeps view."""
    return [*(task_view(entity, project, t) for t in tasks), sweep_view(entity, project, params)]


def describe_panel(panel: Any) -> str:
    kind = type(panel).__name__
    if isinstance(panel, wr.LinePlot):
        return f"{kind} {panel.title!r}: {', '.join(panel.y)} against {panel.x}" + (
            f", grouped by {panel.groupby} ({panel.groupby_aggfunc}, band {panel.groupby_rangefunc})"
            if panel.groupby else "")
    if isinstance(panel, wr.BarPlot):
        return f"{kind} {panel.title!r}: {', '.join(panel.metrics)} per {panel.groupby}"
    if isinstance(panel, wr.ParallelCoordinatesPlot):
        names = [c.display_name or c.metric.name for c in panel.columns]
        return f"{kind} {panel.title!r}: {', '.join(names)}"
    if isinstance(panel, wr.ParameterImportancePlot):
        return f"{kind}: with respect to {panel.with_respect_to}"
    if isinstance(panel, wr.CustomChart):
        fields = panel.chart_fields
        table = panel.query["summaryTable"]["tableKey"]
        return (f"{kind} {panel.chart_strings.get('title', '')!r}: {fields['y']} against "
                f"{fields['x']} from the runs' {table} tables, a line per {fields['stroke']}")
    if isinstance(panel, wr.WeavePanelSummaryTable):
        return f"{kind}: the runs' {panel.table_name} tables"
    return kind


def describe(view: ws.Workspace) -> list[str]:
    """The view as text: name, where, its run set, each section and panel."""
    runset = view.runset_settings
    lines = [f"view {view.name!r} in {view.entity}/{view.project}: runs where {runset.filters}"
             + (f", grouped by {', '.join(g.name for g in runset.groupby)}" if runset.groupby else "")]
    for section in view.sections:
        lines.append(f"  section {section.name!r}")
        lines += [f"    {describe_panel(p)}" for p in section.panels]
    return lines
