"""`ntmbench bench`: how fast the models train, measured, not assumed (issue #4).

Sections (`--only` picks some, comma-separated):

    speed        the NTM training step against its bare controller, batch 1 and 32, one thread,
                 for every forward path (`fused` = off, eager, compile) side by side (targets 1, 2)
    data         generating each task's training batch against the step that consumes it (4)
    scaling      step time against memory size N, copy length L, batch and heads (5)
    convergence  the demo's NTM recipe on ten seeds as one population: how many learn copy, when
    population   S members of one model in one batched pass, S = 1..16, batch 1 and 32 (#18)

Everything lands in `--out` (default reports/bench/): one tidy CSV per section, scaling.png,
population.png,
machine.json (CPU, threads, torch, device, load average) and tables.md, the tables README.md shows.
`--quick` runs every section small (a smoke test, under 3 minutes on 2 cores); the full run takes
about 25 minutes there (12 of them the convergence section's ten seeds).

    ntmbench bench                      # everything (make bench)
    ntmbench bench --quick
    ntmbench bench --only speed,data --accelerator gpu
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import torch

from core.errors import UsageError
from core.files import write_csv, write_text
from core.hardware import cpu_model
from core.tables import markdown
from datamodules.datamodule import TrainStream
from datamodules.registry import TASKS, build_task
from models.presets import preset
from models.registry import build_model

from .options import comma_list
from .speed_convergence import convergence_section, convergence_table
from .speed_population import plot_population, population_section, population_table
from .speed_scaling import plot_scaling, scaling_section, scaling_table
from .speed_timing import (
    clocks, compile_cache_counts, controller_step, copy_batch, first_call_seconds, interleaved,
    median_ratio, model_step, ntm_step,
)

SECTIONS = ("speed", "data", "scaling", "convergence", "population")
LENGTH = 20  # copy length L: T = 2L + 1 = 41 steps
BATCHES = (1, 32)
PAPER_NTM = preset("paper", "copy", "ntm")["options"]  # 1 head, LSTM of 100, memory 128 x 20


# ------------------------------------------------------------------------------------- the machine
MACHINE_KEYS = ("cpu", "cpu_cores", "torch", "device", "gpu")  # kept per section in machine.json


def machine_info(device: torch.device, threads: int) -> dict:
    info = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "cpu": cpu_model(),
        "cpu_cores": os.cpu_count(),
        "threads": threads,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "device": str(device),
        "load_average_start": list(os.getloadavg()),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, timeout=5).stdout.strip()
        info["git_commit"] = commit or None
    except (OSError, subprocess.SubprocessError):
        info["git_commit"] = None
    return info


# --------------------------------------------------------------------------- speed (targets 1, 2)
def speed_section(device: torch.device, modes: list[str], rounds: int, block: float) -> pd.DataFrame:
    """Time per training step of the NTM per `fused` mode and of its bare controller, at batch 1
    and 32, all in one interleaved session. One row per (batch, path)."""
    steps, first_calls, cache = {}, {}, {}
    for B in BATCHES:
        batch = copy_batch(B, LENGTH, device)
        T = batch["inputs"].shape[1]
        read_width = PAPER_NTM["memory_width"]
        steps[(B, "controller")] = controller_step(9 + read_width, PAPER_NTM["controller_size"],
                                                   B, T, device)
        for mode in modes:
            step = ntm_step("ntm", dict(PAPER_NTM, fused=mode), batch, device)
            before = compile_cache_counts()
            first_calls[(B, mode)] = first_call_seconds(step, device)
            after = compile_cache_counts()
            cache[(B, mode)] = {k: after.get(k, 0) - before.get(k, 0) for k in after}
            steps[(B, mode)] = step
    times = interleaved(steps, device, rounds, block)
    rows = []
    for (B, path), t in times.items():
        base = times[(B, "controller")]
        cpu = statistics.median(t["cpu"])
        row = {
            "batch": B, "path": path, "T": 2 * LENGTH + 1,
            "ms_per_step": 1e3 * cpu, "ms_per_step_wall": 1e3 * statistics.median(t["wall"]),
            "sequences_per_s": B / cpu,
            "x_controller": median_ratio(t["cpu"], base["cpu"]),
            "x_controller_wall": median_ratio(t["wall"], base["wall"]),
            "rounds": len(t["cpu"]),
            "first_call_s": first_calls.get((B, path)),
            **{k: v for k, v in cache.get((B, path), {}).items()},
        }
        if B != BATCHES[0]:  # target 2: throughput at this batch over batch 1, per round
            small = times[(BATCHES[0], path)]
            row["x_throughput_vs_batch1"] = median_ratio(
                [B / x for x in t["cpu"]], [BATCHES[0] / x for x in small["cpu"]])
        rows.append(row)
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------------- data (target 4)
def data_section(device: torch.device, mode: str, batches: int) -> pd.DataFrame:
    """Per task and batch size: time to draw a training batch (the harness's TrainStream, on the
    CPU, then moved to the device) against the paper NTM's training step that consumes it, summed
    over `batches` consecutive batches of the stream (each with its own random shape)."""
    now = clocks(device)
    rows = []
    for name in TASKS:
        task = build_task(name)
        options = dict(preset("paper", name, "ntm")["options"], fused=mode)
        for B in BATCHES:
            torch.manual_seed(0)
            net = build_model("ntm", task.input_size, task.output_size, **options).to(device)
            stream = TrainStream(task, B, seed=0)
            current: dict = {}
            step = model_step(net, current)  # reads `current`, refilled per batch below
            current.update({k: v.to(device) for k, v in stream.batch(10**6).items()})
            step()  # warm-up (and compile, if any) before timing
            data_s = step_s = 0.0
            for index in range(batches):
                t0 = now()[0]
                batch = {k: v.to(device, non_blocking=True) for k, v in stream.batch(index).items()}
                t1 = now()[0]
                current.update(batch)
                step()
                t2 = now()[0]
                data_s, step_s = data_s + t1 - t0, step_s + t2 - t1
            rows.append({"task": name, "batch": B, "path": mode, "batches": batches,
                         "ms_data": 1e3 * data_s / batches, "ms_step": 1e3 * step_s / batches,
                         "data_fraction": data_s / step_s})
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------------ tables
def speed_table(df: pd.DataFrame) -> str:
    df = df.assign(path=df["path"].map(lambda p: p if p == "controller" else f"ntm, fused={p}"))
    return markdown(df, {
        "batch": "batch", "path": "path", "ms_per_step": "ms / step (CPU)",
        "sequences_per_s": "sequences / s", "x_controller": "x controller",
        "x_controller_wall": "x controller (wall)", "x_throughput_vs_batch1": "seq/s vs batch 1",
        "first_call_s": "first call s",
    }, {"ms_per_step": ".1f", "sequences_per_s": ".0f", "x_controller": ".2f",
        "x_controller_wall": ".2f", "x_throughput_vs_batch1": ".1f", "first_call_s": ".1f"})


def data_table(df: pd.DataFrame) -> str:
    return markdown(df.assign(percent=100 * df["data_fraction"]), {
        "task": "task", "batch": "batch", "ms_data": "ms / batch (data)",
        "ms_step": "ms / step (NTM)", "percent": "data / step %"},
        {"ms_data": ".2f", "ms_step": ".1f", "percent": ".1f"})


# ------------------------------------------------------------------------------------- the command
def parse_sections(text: str) -> list[str]:
    chosen = comma_list(text)
    unknown = [s for s in chosen if s not in SECTIONS]
    if unknown or not chosen:
        raise UsageError(f"unknown section {', '.join(unknown) or repr(text)}; choose from: "
                         f"{', '.join(SECTIONS)}")
    return chosen


TABLES = {  # section -> (CSV file, title); tables.md shows every section with a CSV in --out
    "speed": ("speed.csv", "Training step, copy L = 20 (T = 41), paper NTM vs its bare controller "
              "(target 1: x controller <= 3; target 2: seq/s at batch 32 >= 12 x batch 1)"),
    "data": ("data.csv", "Data: drawing a training batch vs the training step that consumes it "
             "(target 4: < 5%)"),
    "scaling": ("scaling.csv", "Scaling: exponent of step time in each size (1 = linear; "
                "scaling.png)"),
    "convergence": ("convergence.csv", "Convergence: the demo's NTM recipe (copy) on ten seeds, "
                    "how many learn (< 0.1 bit errors per sequence at the last validation) and when"),
    "population": ("population.csv", "Populations: S members of one model as one batched pass, "
                   "member-sequences per second (population.png; target: S = 8 at batch 1 >= 3 x "
                   "S = 1)"),
}


def section_table(section: str, df: pd.DataFrame) -> str:
    if section == "speed":
        return speed_table(df)
    if section == "data":
        return data_table(df)
    if section == "scaling":
        return scaling_table(df)
    if section == "population":
        return population_table(df)
    return convergence_table(df)


def machine_of(info: dict) -> str:
    """The machine a section ran on, as tables.md names it."""
    return (f"{info['cpu']} ({info['cpu_cores']} cores), torch {info['torch']}, {info['device']}"
            + (f" ({info['gpu']})" if info.get("gpu") else ""))


def section_runs(previous: dict) -> dict:
    """The sections' runs from an earlier machine.json; a section recorded before each kept its own
    machine takes the file's (the one every section then ran on)."""
    machine = {k: previous[k] for k in MACHINE_KEYS if k in previous}
    return {section: machine | run for section, run in previous.get("runs", {}).items()}


def write_tables(out: Path, info: dict) -> None:
    """tables.md from every section's CSV in `out`, each with the command, time and machine that
    made it (`bench --only` reruns some sections, maybe on another machine of the same kind)."""
    text = [f"Steps timed with {info['threads']} thread(s), the convergence population with 1 "
            "thread.", ""]
    for section, (name, title) in TABLES.items():
        if not (out / name).exists():
            continue
        run = info.get("runs", {}).get(section, {})
        where = f", on {machine_of(run)}" if "cpu" in run else ""
        text += [f"**{title}**", "", f"`{run.get('command', 'ntmbench bench')}`, {run.get('date', '')}"
                 f"{where}, load average {run.get('load_average_start', [float('nan')])[0]:.1f} "
                 "at the start.", "", section_table(section, pd.read_csv(out / name)), ""]
    write_text(out / "tables.md", "\n".join(text))


def bench_command(args: argparse.Namespace) -> int:
    sections = parse_sections(args.only)
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu")
                          if args.accelerator == "auto" else {"gpu": "cuda"}.get(args.accelerator, "cpu"))
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError("--accelerator gpu: no CUDA device is available here")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cores = torch.get_num_threads()
    info = machine_info(device, args.threads)
    command = " ".join(["ntmbench bench"] + (["--quick"] if args.quick else []) + (
        [f"--only {args.only}"] if args.only != ",".join(SECTIONS) else []) + (
        [f"--accelerator {args.accelerator}"] if args.accelerator != "auto" else []))
    previous = out / "machine.json"
    runs = section_runs(json.loads(previous.read_text())) if previous.exists() else {}
    torch.set_num_threads(args.threads)
    try:
        for section in sections:
            start = {k: info[k] for k in MACHINE_KEYS if k in info} | {
                "command": command, "date": datetime.now(timezone.utc).isoformat(
                timespec="seconds"), "quick": args.quick, "load_average_start": list(os.getloadavg())}
            if section == "speed":
                modes = ["off", "eager"] if args.quick else ["off", "eager", "compile"]
                df = speed_section(device, modes, rounds=3 if args.quick else 11,
                                   block=0.1 if args.quick else 0.3)
            elif section == "data":
                df = data_section(device, "eager" if args.quick else "compile",
                                  batches=3 if args.quick else 20)
            elif section == "scaling":
                df = scaling_section(device, quick=args.quick)
                plot_scaling(df, out / "scaling.png")
            elif section == "population":
                df = population_section(device, quick=args.quick)
                plot_population(df, out / "population.png")
            else:
                torch.set_num_threads(cores)  # convergence_section sets its own (1 thread)
                df = convergence_section(args.seeds, quick=args.quick)
            write_csv(out / TABLES[section][0], df)
            runs[section] = start | {"load_average_end": list(os.getloadavg())}
            print(f"**{TABLES[section][1]}**\n\n{section_table(section, df)}\n", flush=True)
    finally:
        torch.set_num_threads(cores)
    info["runs"] = runs
    write_text(out / "machine.json", json.dumps(info, indent=2) + "\n")
    write_tables(out, info)
    print(f"wrote {out}/", flush=True)
    return 0
