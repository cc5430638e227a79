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

from mmscale.bench.environment import fingerprint
from mmscale.report.results import metric, new_results, new_section, verdict

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]

# Runs in the page once it has loaded: every <img> decoded, every section non-empty.
CHECK_SCRIPT = """
<script>
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var sections = Array.prototype.slice.call(document.querySelectorAll('section'));
  var out = {
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
