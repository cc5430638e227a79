"""One result format for every benchmark: rows of one schema in ``rows.jsonl`` (``rows.csv`` on
request) in the run folder, which ``mmscale compare`` reads back.

A row is one measurement of one variant::

    {"benchmark": "data", "variant": "ours_cpu",
     "environment": {"device": "cuda", "gpu": "NVIDIA H100 80GB HBM3", "cores": 16, ...},
     "config": {"workers": 8, "batch_size": 32},
     "metrics": {"img_per_s": {"value": 2310.5, "unit": "img/s"}},
     "time": "2025-01-01T12:00:00Z"}

``config`` is flat (nested keys joined with dots); a metric's value is a number, or null when it was
not measured. The CSV is timm's result-CSV shape: one row per line, flat columns named
``benchmark``, ``env.gpu``, ``config.batch_size``, ``metrics.img_per_s [img/s]``.
"""

from __future__ import annotations

import csv
import json
import math
import time
from pathlib import Path

from mmscale.environment import row_fingerprint
from mmscale.errors import DataError
from mmscale.strict_json import dumps, to_plain

ROWS_FILE = "rows.jsonl"
CSV_FILE = "rows.csv"
KEYS = ("benchmark", "variant", "environment", "config", "metrics", "time")


def metric(value, unit: str) -> dict:
    """``{"value", "unit"}``; a missing, non-numeric or non-finite value is ``None`` (not measured)."""
    if isinstance(value, bool):
        value = int(value)
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        value = None
    return {"value": value, "unit": unit}


def flatten(mapping: dict, prefix: str = "") -> dict:
    """Nested dicts to one level with dotted keys; lists and scalars kept as they are."""
    out = {}
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def row(benchmark: str, variant: str, metrics: dict[str, dict], config: dict | None = None) -> dict:
    """One row without its environment and time (``write_rows`` stamps those, once per run)."""
    return {"benchmark": benchmark, "variant": str(variant), "config": to_plain(flatten(config or {})),
            "metrics": metrics}


def rows_from_records(benchmark: str, records: list[dict], variant, units: dict[str, str],
                      config: dict | None = None, config_keys: tuple[str, ...] = ()) -> list[dict]:
    """A benchmark's flat records as rows: ``variant`` names a record's field (or is a function of
    the record), ``units`` maps each metric field to its unit (fields a record lacks are left out),
    ``config_keys`` are the record's fields that join the run's ``config``."""
    out = []
    for record in records:
        name = variant(record) if callable(variant) else record[variant]
        metrics = {k: metric(record[k], unit) for k, unit in units.items() if k in record}
        row_config = {**(config or {}), **{k: record[k] for k in config_keys if k in record}}
        out.append(row(benchmark, name, metrics, row_config))
    return out


def now_utc() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def stamp(rows: list[dict], environment: dict | None = None, at: str | None = None) -> list[dict]:
    """The rows in the schema's key order, each given the run's environment and time if it has none."""
    environment = environment if environment is not None else row_fingerprint()
    at = at or now_utc()
    return [{"benchmark": r["benchmark"], "variant": r["variant"],
             "environment": r.get("environment") or environment, "config": r.get("config") or {},
             "metrics": r["metrics"], "time": r.get("time") or at} for r in rows]


def write_rows(out_dir: str | Path, rows: list[dict], csv_too: bool = False, environment: dict | None = None,
               keep_others: bool = True) -> list[Path]:
    """``out_dir/rows.jsonl`` (and ``rows.csv`` with ``csv_too``); returns the paths written.

    ``keep_others``: rows already there of other benchmarks stay (several benchmarks may share one
    run folder); those of the benchmarks written now are replaced."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / ROWS_FILE
    rows = stamp(rows, environment)
    if keep_others and path.is_file():
        now = {r["benchmark"] for r in rows}
        try:
            rows = [r for r in read_rows(path) if r["benchmark"] not in now] + rows
        except DataError:
            pass  # not rows of ours: replaced
    tmp = path.with_suffix(".jsonl.tmp")
    tmp.write_text("".join(dumps(r) + "\n" for r in rows))
    tmp.replace(path)
    paths = [path]
    if csv_too:
        paths.append(write_csv(out / CSV_FILE, rows))
    return paths


def flat_row(r: dict) -> dict:
    """One row as CSV cells: ``benchmark``, ``variant``, ``time``, ``env.*``, ``config.*``,
    ``metrics.NAME [UNIT]``; lists as JSON text."""
    cells = {"benchmark": r["benchmark"], "variant": r["variant"], "time": r["time"]}
    cells.update({f"env.{k}": v for k, v in flatten(r["environment"]).items()})
    cells.update({f"config.{k}": v for k, v in r["config"].items()})
    cells.update({column(name, m["unit"]): m["value"] for name, m in r["metrics"].items()})
    return {k: dumps(v) if isinstance(v, (list, dict)) else v for k, v in cells.items()}


def column(name: str, unit: str) -> str:
    return f"metrics.{name} [{unit}]" if unit else f"metrics.{name}"


def write_csv(path: str | Path, rows: list[dict]) -> Path:
    """The rows as one CSV; the columns are the union over the rows, in first-seen order."""
    flat = [flat_row(r) for r in rows]
    columns = list(dict.fromkeys(k for cells in flat for k in cells))
    path = Path(path)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(flat)
    return path


def read_rows(path: str | Path) -> list[dict]:
    """The rows of a run folder (its ``rows.jsonl``) or of a JSONL file; a missing file or a line
    that is not a row is a ``DataError`` naming the file and line."""
    path = Path(path)
    if path.is_dir():
        path = path / ROWS_FILE
    if not path.is_file():
        raise DataError(str(path), f"no {ROWS_FILE} here (a benchmark run with --out DIR writes one)")
    rows = []
    for number, text in enumerate(path.read_text().splitlines(), 1):
        if not text.strip():
            continue
        try:
            r = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(str(path), f"not valid JSON ({exc.msg})", line=number) from None
        missing = [k for k in KEYS if k not in r] if isinstance(r, dict) else list(KEYS)
        if missing:
            raise DataError(str(path), f"not a result row: missing {', '.join(missing)}", line=number)
        for name, m in r["metrics"].items():
            if not isinstance(m, dict) or "value" not in m or "unit" not in m:
                raise DataError(str(path), "a metric must be {\"value\", \"unit\"}", line=number, field=name)
        rows.append(r)
    return rows
