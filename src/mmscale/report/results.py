"""``results.json``: build, check against its JSON schema, write and read back.

The schema (``results.schema.json`` beside this file) is the contract between a run and
everything that reads it later (``mmscale report``, ``mmscale compare``, a notebook). Writing
refuses a document that does not validate, so a broken run can never leave a file that a
later re-render silently misreads.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import jsonschema

from mmscale import __version__
from mmscale.errors import DataError
from mmscale.strict_json import to_plain, write_json

SCHEMA_PATH = Path(__file__).with_name("results.schema.json")
RESULTS_NAME = "results.json"
STATUSES = ("ok", "failed", "skipped", "unavailable")


def load_schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text())


def new_section(title: str, status: str = "ok", reason: str | None = None) -> dict:
    """An empty section in the schema's shape; section runners fill rows, charts, verdicts."""
    if status not in STATUSES:
        raise ValueError(f"section status must be one of {STATUSES}, got {status!r}")
    return {
        "title": title, "status": status, "reason": reason, "wall_s": None, "rows": [],
        "tables": [], "summary": {}, "verdicts": [], "charts": [], "error": None,
    }


def verdict(level: str, text: str) -> dict:
    return {"level": level, "text": text}


def metric(values: list[float], unit: str, higher_is_better: bool, section: str,
           note: str | None = None) -> dict:
    """A headline figure with its repeats: ``compare`` judges changes against their spread."""
    out = {
        "values": [float(v) for v in values if v is not None and math.isfinite(v)],
        "unit": unit, "higher_is_better": higher_is_better, "section": section,
    }
    if note:
        out["note"] = note
    return out


def new_results(preset: str | None, config: dict, environment: dict) -> dict:
    return {
        "schema_version": 1,
        "tool": {"name": "mmscale", "version": __version__},
        "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "preset": preset,
        "wall_s": None,
        "config": config,
        "environment": environment,
        "sections": {},
        "metrics": {},
    }


def validation_errors(doc: dict) -> list[str]:
    """Every schema violation as ``path: message`` (empty when the document is valid)."""
    validator = jsonschema.Draft202012Validator(load_schema())
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
    return [f"/{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors]


def write_results(doc: dict, run_dir: str | Path) -> Path:
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    plain = to_plain(doc)
    problems = validation_errors(plain)
    if problems:
        raise ValueError("results do not match their schema: " + "; ".join(problems[:5]))
    path = run_dir / RESULTS_NAME
    tmp = path.with_suffix(".json.tmp")
    write_json(tmp, plain, indent=1)
    tmp.replace(path)  # atomic: a crash never leaves half a results file
    return path


def read_results(run_dir: str | Path) -> dict:
    """Load and check a run's results; a missing or invalid file is a ``DataError`` naming it."""
    path = Path(run_dir)
    if path.is_dir():
        path = path / RESULTS_NAME
    if not path.is_file():
        raise DataError(str(path), "no results.json here (run `mmscale validate --out DIR` first)")
    try:
        doc = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise DataError(str(path), f"not valid JSON ({exc.msg})", line=exc.lineno) from None
    problems = validation_errors(doc)
    if problems:
        raise DataError(str(path), "does not match the results schema: " + problems[0],
                        field=problems[0].split(":")[0])
    return doc
