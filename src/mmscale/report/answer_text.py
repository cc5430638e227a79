"""The answer in words: one function per item, shared by the CLI's lines and the report's answer block."""

from __future__ import annotations

from mmscale.bench import thresholds
from mmscale.report.units import format_quantity, format_range


def interval_text(item: dict) -> str:
    unit = item.get("unit") or ""
    if item.get("basis") == "measured" and item.get("first_oom"):
        return f" (first out-of-memory at {item['first_oom']:,}; the fit predicted {_predicted(item)})"
    if item.get("low") is not None and item.get("high") is not None:
        return f" (95%: {format_range(item['low'], item['high'], unit)})"
    if item.get("low") is not None:
        return f" (95%: at least {format_quantity(item['low'], unit)})"
    return f" ({item['interval_note']})" if item.get("interval_note") else ""


def _predicted(item: dict) -> str:
    if item.get("predicted") is None:
        return "nothing"
    text = f"{item['predicted']:,}"
    if item.get("predicted_low") is not None:
        text += f", 95% {format_range(item['predicted_low'], item['predicted_high'], '')}"
    return text + f", {100 * (item['predicted'] / item['value'] - 1):+.0f}%"


def throughput_text(thr: dict) -> str:
    if not thr.get("value"):
        return f"throughput: not measured ({thr.get('reason')})"
    return (f"{thr['what']}: {format_quantity(thr['value'], 'samples/s')}{interval_text(thr)}; "
            f"{format_quantity(thr['ms_per_sample'], 'ms')} per sample, {thr['device_hours_per_1m_samples']:.3g} "
            f"device-hours per 1M samples [{thr.get('source')}]")


def bottleneck_text(b: dict) -> str:
    if not b.get("stage"):
        return f"bottleneck: not measured ({b.get('reason') or 'no stage breakdown'})"
    return (f"bottleneck: {b.get('verdict') or 'step'} (input stages {format_quantity(b['input_share'], 'fraction')} "
            f"of a {format_quantity(b.get('step_ms'), 'ms')} step); largest stage {b['stage']} at "
            f"{format_quantity(b.get('share'), 'fraction')}")


def prediction_text(p: dict) -> str:
    if p.get("value") is None:
        return f"{p['what']}: not predicted ({p.get('reason')})"
    return (f"{p['what']}: {format_quantity(p['value'], p['unit'])}{interval_text(p)}"
            + (f" [{p['basis']}]" if p.get("basis") else ""))


def change_text(c: dict) -> str:
    return f"{c['change']}: {format_quantity(c['gain_rel'], 'relative')}"


def flags_text(flags: list[dict], limit: int = 4) -> str:
    listed = "; ".join(f"{f['section']} {f['quantity']} {format_quantity(f['value'])} ({f['reason']})"
                       for f in flags[:limit])
    return f"{len(flags)} figure(s) outside physical bounds, flagged in the report: {listed}" + (
        " ..." if len(flags) > limit else "")


def answer_lines(a: dict) -> list[str]:
    """The answer in a few lines of text (the CLI prints them; the report shows them with evidence)."""
    lines = [throughput_text(a["throughput"]), bottleneck_text(a["bottleneck"])]
    for p in a["predictions"]:
        lines.append(prediction_text(p))
        if p.get("value") is not None and p.get("basis") == "predicted":  # the evidence, indented under it
            lines.append(f"    fit: {p.get('fit')}; confirm with: {p.get('confirm')}")
    if a["changes"]:
        lines.append("changes that would help, by measured gain: " + "; ".join(change_text(c) for c in a["changes"][:4]))
    else:
        lines.append(f"changes: none measured in this run gains more than {100 * thresholds.MEANINGFUL_GAIN_REL:.0f}%")
    if a.get("flags"):
        lines.append(flags_text(a["flags"]))
    return lines
