"""Console tables over the analyzer's JSON result (presentation only: no measuring here)."""

from __future__ import annotations

from rich.markup import escape
from rich.table import Table

from mmscale.bench.pipeline.stages import STAGES


def _f(value, fmt="{:.2f}", none="-"):
    return none if value is None else fmt.format(value)


def render_tables(result: dict, console) -> None:
    st = result["stages"]
    t = Table(title=f"Step stages ({result['device']}, batch {result['batch_size']}, decode={result['decode']}, "
                    f"{st['steps']} steps)")
    for col in ("stage", "ms", "share", "host ms"):
        t.add_column(col, justify="left" if col == "stage" else "right")
    for name in list(STAGES) + [k for k in st["stage_ms"] if k not in STAGES]:
        t.add_row(name, _f(st["stage_ms"][name]), _f(100 * st["shares"][name], "{:.1f}%"), _f(st["host_ms"][name]))
    t.add_row("(sum of stages)", _f(st["stages_sum_ms"]), _f(100 * st["stages_sum_ms"] / st["step_ms"], "{:.1f}%"), "")
    t.add_row("step (wall clock)", _f(st["step_ms"]), "100%", "")
    console.print(t)
    v = result["verdict"]
    idle = result["profile"].get("gpu_idle_frac")
    console.print(f"[bold]verdict: {v['name']}[/bold]   samples/s {_f(st['samples_per_s'], '{:.1f}')}   "
                  f"GPU idle {_f(None if idle is None else 100 * idle, '{:.1f}%', 'n/a')}")
    for line in v["evidence"]:
        console.print(f"  - {line}")
    console.print(f"from files vs synthetic batches: {_f(st['samples_per_s'], '{:.1f}')} vs "
                  f"{_f(result.get('synthetic_samples_per_s'), '{:.1f}')} samples/s "
                  f"({_f(100 * result.get('from_files_vs_synthetic', 0), '{:.1f}%')})")
    if result.get("workers"):
        w = result["workers"]
        t = Table(title=f"Host stages per batch (mean over {w['batches']} batches, {w['workers_seen']} workers)")
        t.add_column("stage")
        t.add_column("ms/batch", justify="right")
        t.add_column("ms/sample", justify="right")
        for name, ms in w["host_stage_ms"].items():
            t.add_row(name, _f(ms), _f(w["worker_ms_per_sample"].get(name), "{:.3f}"))
        t.add_row("worker batch time", _f(w["worker_batch_ms"]), "")
        console.print(t)
    if result["variants"]:
        t = Table(title="What-if variants (same run)")
        for col in ("group", "variant", "samples/s", "step ms", "input", "speedup", "note"):
            t.add_column(col, justify="right" if col not in ("group", "variant", "note") else "left",
                         no_wrap=col in ("group", "variant"))
        for r in result["variants"]:
            note = "skipped (below)" if r["skipped"] else ""
            if "overhead_pct" in r["extra"]:
                note = f"overhead {r['extra']['overhead_pct']:+.2f}%"
            if "choice" in r["extra"]:
                note = f"auto keeps {r['extra']['choice']}: {r['extra'].get('reason', '')}"
            t.add_row(r["group"], r["variant"], _f(r["samples_per_s"], "{:.1f}"), _f(r["step_ms"]),
                      _f(None if r["input_frac"] is None else 100 * r["input_frac"], "{:.1f}%"),
                      _f(r["speedup"], "{:.2f}x"), note or "")
        console.print(t)
    if result["attention"]:
        t = Table(title="Attention sweep (fusion fwd+bwd)")
        for col in ("impl", "text len", "batch", "ms", "peak MiB", "note"):
            t.add_column(col, justify="left" if col in ("impl", "note") else "right")
        for r in result["attention"]:
            t.add_row(escape(r["impl"]), str(r["text_len"]), str(r["batch"]), _f(r["ms"]), _f(r["peak_mib"], "{:.0f}"), r["note"])
        console.print(t)
    m = result["monitor"]
    console.print(f"monitor: {m['n_samples']} samples at {_f(m['achieved_hz'], '{:.1f}')} Hz, "
                  f"sampler duty {_f(m['sampler_duty_pct'], '{:.2f}%')}, GPUs {m['gpu_count']} "
                  f"({m['gpu_activity_source'] or m['gpu_note']}), J/sample {_f(m.get('joules_per_sample'), '{:.3f}')}; "
                  f"timeline {m['timeline']}")
    for key, why in result["skipped"].items():
        console.print(f"[yellow]not measured[/yellow] {key}: {why}")
    for key, why in result.get("errors", {}).items():
        console.print(f"[red]failed[/red] {key}: {why}")
