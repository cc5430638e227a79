"""Helpers shared by the report tests: a constructed results document and a headless-Chromium check.

Loaded by path (``load_helpers()``) because the suite runs with ``--import-mode=importlib``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from mmscale.environment import fingerprint
from mmscale.report.results import metric, new_results, new_section, verdict
from mmscale.validate.charts import datascale_charts, monitor_charts, scaling_charts

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]

# Runs in the page once it has loaded: every <img> decoded, every section non-empty, the answer block's
# items, each table cell or list item with whether it carries a flag.
CHECK_SCRIPT = """
<script>
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var sections = Array.prototype.slice.call(document.querySelectorAll('section'));
  var cells = Array.prototype.slice.call(document.querySelectorAll('td, li'));
  var out = {
    cells: cells.map(function (c) {
      return {text: c.innerText, flagged: !!(c.querySelector('.flag') || c.closest('.flag'))};
    }),
    answer: Array.prototype.slice.call(document.querySelectorAll('#answer [data-answer]')).map(function (a) {
      return {kind: a.getAttribute('data-answer'), id: a.getAttribute('data-id'), text: a.innerText};
    }),
    order: sections.map(function (s) { return s.id; }),
    figures: Array.prototype.slice.call(document.querySelectorAll('figure')).map(function (f) { return f.id; }),
    images: imgs.map(function (i) { return {alt: i.alt, width: i.naturalWidth, complete: i.complete}; }),
    sections: sections.map(function (s) {
      var h = s.querySelector('h2');
      var body = s.innerText.replace(h ? h.innerText : '', '').trim();
      return {id: s.id, chars: body.length, images: s.querySelectorAll('img').length};
    })
  };
  var pre = document.createElement('pre');
  pre.id = 'mmscale-check';
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>
"""


def chromium_binary() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def check_in_chromium(html_path: Path, timeout_s: float = 120) -> dict:
    """Open a copy of the report (with the check script appended) and return what the page saw."""
    html = Path(html_path).read_text(encoding="utf-8")
    with tempfile.TemporaryDirectory(prefix="mmscale-chromium-") as tmp:
        page = Path(tmp) / "page.html"
        page.write_text(html.replace("</body>", CHECK_SCRIPT + "</body>"), encoding="utf-8")
        profile = Path(tmp) / "profile"
        cmd = [chromium_binary(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--virtual-time-budget=10000",
               "--dump-dom", page.as_uri()]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s,
                              env={**os.environ, "HOME": tmp})
    match = re.search(r'<pre id="mmscale-check">(.*?)</pre>', proc.stdout, re.S)
    assert match, f"the check script did not run (exit {proc.returncode}): {proc.stderr[-1500:]}"
    text = match.group(1).replace("&quot;", '"').replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    return json.loads(text)


def chart(chart_id: str, values: list[float]) -> dict:
    return {"id": chart_id, "title": chart_id, "x_label": "x", "y_label": "y",
            "series": [{"label": "measured", "x": list(range(len(values))), "y": values, "style": "line+points"}],
            "vlines": [{"value": 1, "label": "first OOM"}], "hlines": [{"value": 2.0, "label": "capacity"}]}


def sample_results(throughput: list[float] | None = None, p99: list[float] | None = None) -> dict:
    """A results document as validate writes it, with chosen repeats for two metrics."""
    doc = new_results("cpu", {"train": {"batch_size": 32}}, fingerprint())
    ok = new_section("Memory and throughput vs batch size")
    ok["rows"] = [{"batch_size": 8, "status": "ok", "peak_bytes": 10_000_000, "samples_per_s": 90.5},
                  {"batch_size": 16, "status": "oom", "peak_bytes": None, "samples_per_s": None}]
    ok["summary"] = {"memory_kind": "host_rss", "oom_simulated": True}
    ok["verdicts"] = [verdict("pass", "memory grows linearly"), verdict("warn", "knee at 8")]
    ok["charts"] = [chart("batchsweep-memory", [1.0, 2.0, 3.1]), chart("batchsweep-throughput", [5, 6, None])]
    doc["sections"]["batchsweep"] = ok
    doc["sections"]["load"] = new_section("Serving latency vs concurrency", "unavailable",
                                          "not yet available: no load test module")
    failed = new_section("Time and memory vs dataset size", "failed", "RuntimeError: boom")
    failed["error"] = "Traceback...\nRuntimeError: boom"
    doc["sections"]["datascale"] = failed
    doc["metrics"] = {
        "batchsweep.fp32.samples_per_s@8": metric(throughput or [100, 103, 98, 101, 99], "samples/s", True, "batchsweep"),
        "load.p99_ms@c4": metric(p99 or [50, 52, 49], "ms", False, "load"),
    }
    return doc


def full_results() -> dict:
    """A GPU run with every section the answer reads, figures chosen so the answer is known in advance,
    and one impossible figure (process CPU 15,107% on 16 cores) planted in the monitor's statistics."""
    doc = new_results("gpu", {"train": {"batch_size": 64, "precision": "bf16"}, "model": {"fusion": "fused"}},
                      fingerprint())
    doc["environment"].update(cpu_count=16, cpu_count_usable=16, host_memory_gib=125.9,
                              gpus=[{"name": "NVIDIA H100 80GB HBM3", "total_memory_gib": 79.2}])
    pipeline = new_section("Training step breakdown and bottleneck")
    pipeline["summary"] = {"device": "cuda", "batch_size": 64, "decode": "gpu", "step_ms": 100.0,
                           "samples_per_s": 640.0, "bottleneck": "input-bound", "synthetic_samples_per_s": 900.0}
    pipeline["tables"] = [{"title": "Stage breakdown (mean per step)", "rows": [
        {"stage": "data_wait", "ms": 30.0, "share": 0.30}, {"stage": "image_fwd", "ms": 20.0, "share": 0.20},
        {"stage": "backward", "ms": 50.0, "share": 0.50}]}]
    pipeline["rows"] = [
        {"group": "input", "variant": "dataloader_cpu_decode", "samples_per_s": 500.0, "skipped": ""},
        {"group": "input", "variant": "gpu_decode", "samples_per_s": 600.0, "skipped": ""},
        {"group": "input", "variant": "gpu_decode_1thread", "samples_per_s": 780.0, "skipped": ""}]
    datascale = new_section("Time and memory vs dataset size")
    datascale["summary"] = {"epochs": 1}
    # time = 1 ms per sample + 5 s, with a little noise so the interval has a width
    datascale["rows"] = [{"n_samples": n, "train_wall_s": n / 1000 + 5 + e, "samples_per_s": n / (n / 1000 + 5 + e)}
                         for n, e in ((10_000, 0.1), (50_000, -0.2), (100_000, 0.1))]
    batchsweep = new_section("Memory and throughput vs batch size")
    batchsweep["summary"] = {"memory_kind": "gpu_allocated", "capacity_gib": 79.2, "oom_simulated": False,
                             "variants": ["bf16", "fp32"]}
    # 0.1 GiB per sample + 2 GiB: reaches 79.2 GiB at batch 772; no OOM was reached
    batchsweep["rows"] = [{"variant": v, "batch_size": b, "phase": "double", "status": "ok",
                           "memory_kind": "gpu_allocated", "peak_bytes": (k * b + 2 + jitter) * 2**30,
                           "samples_per_s": sps}
                          for v, k in (("bf16", 0.1), ("fp32", 0.2))
                          for b, jitter, sps in ((32, 0.01, 500.0), (64, -0.02, 700.0), (128, 0.01, 800.0),
                                                 (256, 0.0, 820.0))]
    batchsweep["tables"] = [{"title": "Per-variant analysis", "rows": [
        {"variant": "bf16", "found_max_batch": 256, "first_oom_batch": None},
        {"variant": "fp32", "found_max_batch": 256, "first_oom_batch": None}]}]
    scaling = new_section("Multi-GPU scaling")
    scaling["rows"] = [
        {"strategy": "ddp", "regime": "weak", "world_size": 1, "step_ms": 100.0, "step_ms_values": [100.0] * 4,
         "nosync_step_ms": None, "efficiency": 1.0, "device": "cuda"},
        {"strategy": "ddp", "regime": "weak", "world_size": 2, "step_ms": 110.0,
         "step_ms_values": [108.0, 109.0, 111.0, 112.0], "nosync_step_ms": 100.0, "efficiency": 0.91,
         "device": "cuda"}]
    monitor = new_section("Hardware timelines")
    monitor["tables"] = [{"title": "Field statistics over the whole run", "rows": [
        {"field": "cpu_pct", "mean": 444.1, "min": 0.0, "max": 15107.4, "n": 629},
        {"field": "rss_gib", "mean": 5.9, "min": 0.7, "max": 7.1, "n": 629}]}]
    timeline = [{"t_s": 0.5 * i, "cpu_pct": 15107.4 if i == 3 else 90.0 + i, "rss_gib": 1.0 + 0.1 * i,
                 "gpu0_util_pct": 50.0, "gpu0_mem_used_gib": 20.0} for i in range(8)]
    marks = [{"t_s": 0.2, "mark": "pipeline start"}, {"t_s": 2.1, "mark": "scaling start"}]
    monitor["charts"] = monitor_charts(timeline, marks, cores=16)
    analysis = {"time_fit": {"slope": 1e-3, "intercept": 5.0, "r2": 0.999, "n_points": 3}, "time_exponent": 0.95}
    datascale["charts"] = datascale_charts([{**r, "peak_rss_gib": 6.9} for r in datascale["rows"]], analysis)
    scaling["charts"] = scaling_charts([{**r, "comm_ms_at_link": 2.0 if r["world_size"] > 1 else None,
                                         "issue_ms": 50.0, "comm_share": 0.09} for r in scaling["rows"]])
    doc["sections"].update(pipeline=pipeline, datascale=datascale, batchsweep=batchsweep, scaling=scaling,
                           monitor=monitor)
    return doc
