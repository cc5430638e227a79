"""``mmscale bench batchsweep``: double the batch to the first OOM, bisect, fit memory per sample."""

from __future__ import annotations

import argparse

from mmscale.bench.batchsweep import VARIANTS
from mmscale.cli.bench.args import name_list
from mmscale.cli.out import add_out_arguments, run_config, save_rows
from mmscale.report.html import fmt
from mmscale.strict_json import dumps
from mmscale.validate import run_one_section
from mmscale.validate.rows import section_rows

ORDER = 40


def _known_variants() -> list[str]:
    return list(VARIANTS)


def add_common(parser) -> None:
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                        help="config overrides (validate.*, data.*, model.*, train.*)")
    parser.add_argument("--preset", default="cpu", choices=("cpu", "gpu"), help="cpu or gpu (model sizes and sweep settings)")
    parser.add_argument("--config", default=None, help="TOML file layered over the preset")
    add_out_arguments(parser, "writes DIR/<benchmark>.json", default="runs/bench", metavar="DIR")
    parser.add_argument("--json", action="store_true", help="print the section as JSON")


def finish_section(name: str, section: dict, args, columns: list[str]) -> int:
    """The section's result rows into the run folder, then ``print_section``."""
    save_rows(args, args.out, section_rows(name, section, run_config(args)))
    return print_section(section, args, columns)


def print_section(section: dict, args, columns: list[str]) -> int:
    """Verdicts, then the rows as a table (printed last); exit 1 when the section failed."""
    if args.json:
        print(dumps(section, indent=1, default=str))
        return 1 if section["status"] == "failed" else 0
    if section["reason"]:
        print(f"{section['status']}: {section['reason']}")
    for v in section["verdicts"]:
        print(f"{v['level'].upper():<5} {v['text']}")
    for extra in section.get("tables", []):
        print(f"\n{extra['title']}:")
        _table(extra["rows"], list(extra["rows"][0]) if extra["rows"] else [])
    if section["rows"]:
        print()
        _table(section["rows"], columns)
    return 1 if section["status"] == "failed" else 0


def _table(rows: list[dict], columns: list[str]) -> None:
    cells = [[fmt(r.get(c)) for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    print("  ".join(c.rjust(w) for c, w in zip(columns, widths)))
    for row in cells:
        print("  ".join(v.rjust(w) for v, w in zip(row, widths)))


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "batchsweep", help="memory and throughput against batch size, to the first out-of-memory",
        description="Double the batch until the first out-of-memory (caught and recorded; the run goes "
                    "on), bisect below it, fit peak memory = bytes/sample * batch + fixed on the doubling "
                    "points, compare the predicted max batch with the one found, and find the throughput "
                    "knee; for each what-if variant (bf16, fp32, activation checkpointing, FSDP). On a CPU "
                    "memory is host RSS growth and an OOM is simulated by validate.batchsweep.memory_cap_gib.",
        epilog="examples:\n  mmscale bench batchsweep --preset gpu\n"
               "  mmscale bench batchsweep --preset cpu --variants fp32 validate.batchsweep.memory_cap_gib=0.3",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--variants", type=name_list(_known_variants, "variant"), default=None,
                        help="comma-separated: fp32,bf16,bf16+ckpt,fp32+ckpt,fsdp")
    add_common(parser)
    parser.set_defaults(run=run)


def run(args) -> int:
    overrides = list(args.overrides)
    if args.variants:
        names = ",".join(f'"{v}"' for v in args.variants)
        overrides.append(f"validate.batchsweep.variants=[{names}]")
    section = run_one_section("batchsweep", args.preset, overrides, args.config, None, args.out,
                              show_progress=not args.json)
    return finish_section("batchsweep", section, args, ["variant", "batch_size", "phase", "status", "peak_bytes",
                                         "step_ms", "samples_per_s"])
