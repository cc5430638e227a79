"""One run directory from several ``mmscale validate --merge`` invocations.

A machine may cap how long one command runs (a batch scheduler's wall-time limit, a lent GPU's
per-command limit); the suite then runs as several invocations into one RUN_DIR, each with its own
``validate.sections=[...]``. Merging keeps every section measured earlier, stamped with the time of
the invocation that measured it, and keeps each invocation's hardware-monitor section and
timeline file under their own names, so nothing measured earlier is lost or shown as measured now.
A merge into a run made with a different configuration is refused: its figures would not belong
to one experiment.
"""

from __future__ import annotations

import json
from pathlib import Path

from mmscale.errors import ConfigError


def load_previous(run_dir: Path, config: dict) -> dict:
    """The earlier invocation's results, checked to come from the same configuration."""
    path = run_dir / "results.json"
    if not path.is_file():
        raise ConfigError("--merge", f"{path} does not exist: the first invocation runs without --merge")
    try:
        previous = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError("--merge", f"{path} cannot be read ({exc})") from None
    differences = config_differences(previous.get("config") or {}, config)
    if differences:
        raise ConfigError("--merge", f"{path} was made with a different configuration "
                          f"({'; '.join(differences[:5])}); merge only invocations of the same config")
    return previous


def config_differences(before: dict, now: dict, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ, ignoring ``validate.sections`` (which is meant to differ)."""
    out = []
    for key in sorted(set(before) | set(now)):
        dotted = f"{prefix}{key}"
        if dotted == "validate.sections":
            continue
        a, b = before.get(key), now.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += config_differences(a, b, dotted + ".")
        elif a != b:
            out.append(f"{dotted}: {a!r} -> {b!r}")
    return out


def keep_earlier_monitors(previous: dict, run_dir: Path) -> dict[str, dict]:
    """The earlier invocations' monitor sections under ``monitor_1``, ``monitor_2``, ...

    The latest earlier one (``monitor``) gets the next free number and its ``monitor.jsonl`` is
    renamed to match, before this invocation writes its own ``monitor.jsonl``.
    """
    sections = previous.get("sections") or {}
    kept = {name: s for name, s in sections.items() if name.startswith("monitor_")}
    if "monitor" in sections:
        name = f"monitor_{len(kept) + 1}"
        section = dict(sections["monitor"])
        section["title"] = f"{section['title']} (invocation of {previous['created_utc']})"
        section.setdefault("invocation", previous["created_utc"])
        timeline = run_dir / "monitor.jsonl"
        if timeline.is_file():
            timeline.rename(run_dir / f"{name}.jsonl")
        kept[name] = section
    return kept


def merge_sections(results: dict, previous: dict, ran: list[str], earlier_monitors: dict[str, dict]) -> None:
    """Fill ``results`` (this invocation) with the earlier sections it did not run."""
    created = results["created_utc"]
    for name, section in results["sections"].items():
        if name in ran:
            section["invocation"] = created
    for name, section in (previous.get("sections") or {}).items():
        if name == "monitor" or name.startswith("monitor_") or name in ran:
            continue
        if section.get("status") == "skipped" and name in results["sections"]:
            continue
        carried = dict(section)
        carried.setdefault("invocation", previous["created_utc"])
        results["sections"][name] = carried
    results["sections"].update(earlier_monitors)
    invocations = list(previous.get("invocations") or [{
        "created_utc": previous["created_utc"],
        "sections": [n for n, s in (previous.get("sections") or {}).items()
                     if not n.startswith("monitor") and s.get("status") != "skipped"],
        "wall_s": previous.get("wall_s"),
    }])
    invocations.append({"created_utc": created, "sections": list(ran), "wall_s": None})
    results["invocations"] = invocations
