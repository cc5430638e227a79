"""The main job: run every section on one dataset, write ``results.json`` and ``report.html``.

``validate(...)`` resolves the configs of a preset once, fingerprints the environment, makes
sure there is a dataset (the user's, or a synthesized one), then runs the sections in order
with the hardware monitor attached throughout. Each section is a function returning a section
dict (``validate.sections``); one that raises is recorded as failed with its error, and the
rest still run, so a report always comes out and says what broke.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
import traceback
from pathlib import Path
from typing import Callable

from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

from mmscale.data import synthesize
from mmscale.environment import fingerprint, row_fingerprint
from mmscale.errors import ConfigError
from mmscale.monitor.brief import start_sampler
from mmscale.report.answer import answer
from mmscale.report.html import write_report
from mmscale.report.results import new_results, new_section, verdict, write_results
from mmscale.result_rows import write_rows
from mmscale.strict_json import to_plain, write_json
from mmscale.train.runtime import resolve_runtime
from mmscale.validate.config import SECTION_ORDER, Context, ValidateConfig, load_configs
from mmscale.validate.merge import keep_earlier_monitors, load_previous, merge_sections
from mmscale.validate.rows import validate_rows
from mmscale.validate.sections import RUNNERS, TITLES, collect_metrics, monitor_section

log = logging.getLogger(__name__)

# each step's share of a run, for the ETA: seconds of the CPU preset on 2 cores (153 s in all); the
# ETA is elapsed time over the share done, so it corrects itself on other machines as sections end
STEP_SECONDS = {"prepare": 8, "data": 5, "pipeline": 10, "datascale": 31, "batchsweep": 50, "load": 25, "scaling": 25}
# Sections that read the dataset; the batch sweep and scaling train on synthetic tensors, so a
# run of those alone does not pay for synthesizing a dataset it never opens.
DATA_SECTIONS = frozenset({"data", "pipeline", "datascale", "load"})


def run_section(name: str, runner: Callable[[Context], dict], ctx: Context) -> dict:
    """One section, timed; an exception becomes a failed section instead of ending the run."""
    t0 = time.perf_counter()
    if ctx.monitor is not None and hasattr(ctx.monitor, "mark"):
        ctx.monitor.mark(f"{name} start")
    try:
        section = runner(ctx)
    except Exception as exc:  # noqa: BLE001 - a failed section is a result, the others still run
        log.warning("section %s failed: %s", name, exc)
        section = new_section(TITLES[name], "failed", f"{type(exc).__name__}: {exc}")
        section["error"] = "".join(traceback.format_exception(exc))[-4000:]
        section["verdicts"].append(verdict("fail", f"the section raised {type(exc).__name__}; see the error detail"))
    section["wall_s"] = time.perf_counter() - t0
    return section


def prepare_data(ctx_settings: ValidateConfig, data_dir: str | None, run_dir: Path, job, say) -> Path:
    """The user's dataset, checked to exist, or a synthesized one under the run directory."""
    if data_dir:
        path = Path(data_dir)
        if not path.exists():
            raise ConfigError("--data", f"{path} does not exist")
        return path

    out = run_dir / "data"
    marker = out / ("train.jsonl" if ctx_settings.synth_format == "files" else "train-000000.tar")
    if not marker.exists():
        say(f"synthesizing {ctx_settings.synth_samples} samples into {out}")
        synthesize(ctx_settings.synth_samples, out, fmt=ctx_settings.synth_format, progress=False)
    return out


def validate(preset: str | None = "cpu", data_dir: str | None = None, out_dir: str | Path = "runs/validate",
             overrides: list[str] = (), file: str | None = None, show_progress: bool = True,
             merge: bool = False, csv: bool = False) -> dict:
    """Run the suite; returns the results document (also written to ``out_dir``, with its sections
    as result rows in ``rows.jsonl``, and ``rows.csv`` with ``csv``).

    ``merge``: keep the sections an earlier invocation wrote into ``out_dir`` (same config) and
    add this invocation's (``validate.merge``), for suites split across several commands.
    """
    configs = load_configs(preset, list(overrides), file)
    run_dir = Path(out_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    device = resolve_runtime(configs.job.train).device.type
    settings = configs.validate
    t_start = time.perf_counter()
    with _progress(show_progress, sum(STEP_SECONDS.values())) as (progress, task):
        def say(text: str) -> None:
            if progress is not None:
                progress.update(task, description=text)
            else:
                log.info(text)

        data_path = Path(configs.job.data.path)
        if DATA_SECTIONS & set(settings.sections):
            data_path = prepare_data(settings, data_dir, run_dir, configs.job, say)
            job = dataclasses.replace(configs.job, data=dataclasses.replace(configs.job.data, path=str(data_path)))
            configs = dataclasses.replace(configs, job=job)
        results = new_results(preset, configs.as_dict(), fingerprint())
        previous, earlier_monitors = None, {}
        if merge:
            previous = load_previous(run_dir, results["config"])
            earlier_monitors = keep_earlier_monitors(previous, run_dir)
        monitor = start_sampler(settings.monitor_interval_s)
        ctx = Context(configs, run_dir, data_path, device, monitor, say)
        try:
            _advance(progress, task, STEP_SECONDS["prepare"])
            for name in SECTION_ORDER:
                say(f"{TITLES[name]}")
                if name not in settings.sections:
                    results["sections"][name] = new_section(
                        TITLES[name], "skipped", "not in validate.sections for this run")
                else:
                    results["sections"][name] = run_section(name, RUNNERS[name], ctx)
                _advance(progress, task, STEP_SECONDS[name])
        finally:
            if monitor is not None:
                monitor.stop()
        results["sections"]["monitor"] = monitor_section(monitor, run_dir)
    results["wall_s"] = time.perf_counter() - t_start
    if previous is not None:
        merge_sections(results, previous, list(settings.sections), earlier_monitors)
        results["invocations"][-1]["wall_s"] = results["wall_s"]
    results["metrics"] = collect_metrics(results["sections"])
    results["answer"] = answer(results)
    write_results(results, run_dir)
    write_report(results, run_dir)
    write_rows(run_dir, validate_rows(results), csv_too=csv, environment=row_fingerprint(results["environment"]),
               keep_others=False)
    return results


@contextlib.contextmanager
def _progress(enabled: bool, total: int):
    if not enabled:
        yield None, None
        return

    with Progress(TextColumn("{task.description:<60}"), BarColumn(), TaskProgressColumn(), TimeElapsedColumn(),
                  TextColumn("{task.fields[eta]}")) as progress:
        task = progress.add_task("preparing", total=total, eta="ETA: after the first step")
        yield progress, task


def _advance(progress, task, seconds_share: float) -> None:
    """Move the bar by a step's share and re-estimate the end: elapsed time over the share done."""
    if progress is None:
        return
    progress.advance(task, seconds_share)
    state = progress.tasks[task]
    left_s = state.elapsed / state.completed * (state.total - state.completed) if state.completed else 0.0
    progress.update(task, eta=f"ETA {int(left_s // 60)}:{int(left_s % 60):02d}" if left_s else "")


def run_one_section(name: str, preset: str | None, overrides: list[str] = (), file: str | None = None,
                    data_dir: str | None = None, out_dir: str | Path = "runs/bench",
                    show_progress: bool = True) -> dict:
    """One section alone (what ``mmscale bench datascale|batchsweep|scaling`` run), as a section dict.

    Writes ``<name>.json`` (the section plus config and environment) and the hardware monitor's
    timeline of the run, ``<name>.monitor.jsonl`` (one name per benchmark: several share one
    ``out_dir``), into ``out_dir``; the JSON carries the monitor's summary.
    """
    configs = load_configs(preset, list(overrides), file)
    run_dir = Path(out_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    device = resolve_runtime(configs.job.train).device.type
    with _progress(show_progress, 1) as (progress, task):
        def say(text: str) -> None:
            if progress is not None:
                progress.update(task, description=text)

        data_path = Path(configs.job.data.path)
        if name == "datascale":
            data_path = prepare_data(configs.validate, data_dir, run_dir, configs.job, say)
            job = dataclasses.replace(configs.job, data=dataclasses.replace(configs.job.data, path=str(data_path)))
            configs = dataclasses.replace(configs, job=job)
        monitor = start_sampler(configs.validate.monitor_interval_s)
        ctx = Context(configs, run_dir, data_path, device, monitor, say)
        try:
            section = run_section(name, RUNNERS[name], ctx)
        finally:
            if monitor is not None:
                monitor.stop()
        if progress is not None:
            progress.advance(task)
    doc = {"section": section, "monitor": monitor_section(monitor, run_dir, f"{name}.monitor.jsonl"),
           "config": configs.as_dict(), "environment": fingerprint()}
    write_json(run_dir / f"{name}.json", to_plain(doc), indent=1)
    return section
