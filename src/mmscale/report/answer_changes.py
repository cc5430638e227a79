"""Changes that would help, ranked by the gain this run measured for them.

A gain is only counted inside one benchmark, against the row that is the run's own configuration
(the pipeline's what-if group row that matches the config, the batch sweep's row at the job's
batch): rows of different benchmarks run on different inputs (files vs device-resident tensors)
and are never divided by each other.
"""

from __future__ import annotations

from mmscale import stats


def resolved_precision(config: dict, gpu: bool) -> str:
    """The job's precision with ``auto`` resolved as the runtime does: bf16 on a GPU, fp32 on CPU."""
    precision = str((config.get("train") or {}).get("precision") or "auto")
    return ("bf16" if gpu else "fp32") if precision == "auto" else precision


def resolved_weights(train: dict) -> str:
    """The job's weight dtype with ``auto`` resolved as the runtime does for bf16 compute: bf16 unless
    FSDP (it keeps its own fp32 copies) or gradient accumulation rules it out. A copy of
    ``train.runtime``'s rule: a report is read where the run's device and ranks are not."""
    weights = str(train.get("weights") or "auto")
    if weights != "auto":
        return weights
    return "fp32" if train.get("parallel") == "fsdp" or (train.get("grad_accum") or 1) > 1 else "bf16"


def on_gpu(doc: dict) -> bool:
    """Whether the run trained on a GPU (the pipeline's device, else a GPU in the environment)."""
    device = ((doc["sections"].get("pipeline") or {}).get("summary") or {}).get("device")
    return device == "cuda" if device else bool((doc.get("environment") or {}).get("gpus"))


def job_variant(doc: dict, variants: list[str]) -> str | None:
    """The batch-sweep variant that is this job's own configuration (precision, checkpointing)."""
    config = doc.get("config") or {}
    ckpt = "+ckpt" if (config.get("train") or {}).get("activation_checkpointing") else ""
    name = resolved_precision(config, on_gpu(doc)) + ckpt
    return name if name in variants else (variants[0] if variants else None)


def current_pipeline_variant(group: str, config: dict, summary: dict) -> str | None:
    """The row of a pipeline what-if group that is this run's configuration (None: not among them)."""
    train, model = config.get("train") or {}, config.get("model") or {}
    if group == "input":
        return "gpu_decode" if summary.get("decode") == "gpu" else "dataloader_cpu_decode"
    if group == "fusion_precision":
        precision = resolved_precision(config, summary.get("device") == "cuda")
        weights = "_weights" if precision == "bf16" and resolved_weights(train) == "bf16" else ""
        return f"{model.get('fusion', 'fused')}_{precision}{weights}"
    if group == "compile" and train.get("compile") in (True, False):
        return "compile_step_graph" if train.get("step_graph") is True else ("compile" if train["compile"] else "eager")
    return None


def pipeline_changes(section: dict, config: dict) -> list[dict]:
    out = []
    rows = [r for r in section.get("rows", []) if r.get("samples_per_s") and not r.get("skipped")]
    for group in dict.fromkeys(r["group"] for r in rows):
        current = current_pipeline_variant(group, config, section.get("summary") or {})
        base = next((r for r in rows if r["group"] == group and r["variant"] == current), None)
        if base is None:
            continue
        for r in rows:
            if r["group"] == group and r is not base:
                out.append({"change": f"{group}: {current} → {r['variant']}",
                            "gain_rel": r["samples_per_s"] / base["samples_per_s"] - 1, "section": "pipeline",
                            "measured_by": f"pipeline what-if group '{group}', same process and steps; "
                                           "one run per variant, so its noise is not measured"})
    return out


def _per_step(row: dict) -> list[float]:
    """Samples/s of each timed step of a batch-sweep row (its spread is the row's noise)."""
    return [row["batch_size"] / (t / 1e3) for t in row.get("step_ms_values") or [] if t > 0] or [row["samples_per_s"]]


def _sweep_change(text: str, base: dict, other: dict) -> dict | None:
    """A batch-sweep gain, kept only when it is larger than the spread of both rows' timed steps."""
    change = stats.compare_samples(_per_step(base), _per_step(other), higher_is_better=True)
    if change.verdict != "improvement":
        return None
    return {"change": text, "gain_rel": change.change_rel, "noise_rel": change.noise_rel, "section": "batchsweep",
            "measured_by": f"batch sweep, training step on device-resident batches; beyond the steps' "
                           f"{100 * change.noise_rel:.0f}% spread"}


def batchsweep_changes(section: dict, config: dict, variant: str | None) -> list[dict]:
    """A larger batch in the job's own variant, and the other variants at the job's batch."""
    batch = (config.get("train") or {}).get("batch_size")
    ok = [r for r in section.get("rows", []) if r.get("status") == "ok" and r.get("samples_per_s")]
    own = [r for r in ok if r.get("variant") == variant]
    at_batch = next((r for r in own if r["batch_size"] == batch), None)
    if at_batch is None:
        return []
    found = []
    best = max(own, key=lambda r: r["samples_per_s"])
    if best["batch_size"] != batch:
        found.append(_sweep_change(f"batch {batch} → {best['batch_size']} ({variant})", at_batch, best))
    for other in sorted({r["variant"] for r in ok} - {variant}):
        row = next((r for r in ok if r["variant"] == other and r["batch_size"] == batch), None)
        if row:
            found.append(_sweep_change(f"{variant} → {other} at batch {batch}", at_batch, row))
    return [c for c in found if c]


def changes(doc: dict, min_gain_rel: float) -> list[dict]:
    """Every measured change that gains more than ``min_gain_rel``, largest gain first."""
    sections, config = doc["sections"], doc.get("config") or {}
    found = []
    pipeline = sections.get("pipeline") or {}
    if pipeline.get("status") == "ok":
        found += pipeline_changes(pipeline, config)
    bs = sections.get("batchsweep") or {}
    if bs.get("status") == "ok":
        found += batchsweep_changes(bs, config, job_variant(doc, bs["summary"].get("variants") or []))
    return sorted((c for c in found if c["gain_rel"] > min_gain_rel), key=lambda c: -c["gain_rel"])
