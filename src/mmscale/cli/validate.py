"""``mmscale validate``: the whole suite on one dataset, to results.json + report.html."""

from __future__ import annotations

import argparse
import textwrap

from mmscale.bench.thresholds import describe as describe_thresholds
from mmscale.cli.out import add_out_arguments
from mmscale.extras import install_hint, missing_modules
from mmscale.strict_json import dumps
from mmscale.validate import validate

ORDER = 10

EPILOG = """examples:
  mmscale validate --preset cpu --out runs/demo            (132 s measured on 2 CPU cores)
  mmscale validate --preset gpu --data data/coco --out runs/h100
  mmscale validate --preset cpu 'validate.datascale.sizes=[200,400]' 'validate.sections=["datascale"]'
  mmscale validate --preset gpu --out runs/h100 'validate.sections=[data,pipeline,datascale]'
  mmscale validate --preset gpu --out runs/h100 --merge 'validate.sections=[batchsweep,load,scaling]'
                                               (one suite in two commands, one results.json)
  Overrides with brackets are quoted: zsh and other shells would expand them.

Sections, in order: data (loader throughput), pipeline (step breakdown, bottleneck), datascale
(time and memory vs N), batchsweep (memory vs batch to the first OOM, what-if variants), load
(latency vs concurrency against a spawned server), scaling (1..N GPUs, DDP and FSDP2). A section
that fails is reported as failed and the rest still run. Without --data a synthetic set is made
under RUN_DIR/data. Overrides are dotted key=value pairs on the tables validate.*, data.*,
model.*, train.*. Re-render later with `mmscale report RUN_DIR`.

""" + textwrap.fill("Verdict thresholds (mmscale.bench.thresholds): " + describe_thresholds() + ".", 96)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "validate", help="the main job: run every benchmark and write results.json + report.html",
        description="Answer 'will this architecture and pipeline scale, and what breaks first' with one "
                    "command: measures each section with the hardware monitor attached and writes a "
                    "schema-checked results.json and a self-contained report.html.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                        help="config overrides (mmscale config --preset cpu validate lists the keys)")
    parser.add_argument("--preset", default="cpu", choices=("cpu", "gpu"),
                        help="cpu (default: this machine, minutes) or gpu (one GPU, base model)")
    parser.add_argument("--config", default=None, help="TOML file layered over the preset")
    parser.add_argument("--data", default=None, metavar="DIR", help="your dataset (default: synthesize one)")
    add_out_arguments(parser, "where results.json and report.html go (default runs/validate)", default="runs/validate",
                      metavar="RUN_DIR")
    parser.add_argument("--merge", action="store_true",
                        help="keep the sections an earlier invocation wrote into RUN_DIR (same config) and add "
                             "this one's: split a long suite into several commands with validate.sections=[...]")
    parser.add_argument("--json", action="store_true", help="print the section statuses and verdicts as JSON")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(run=run)


def run(args) -> int:
    results = validate(preset=args.preset, data_dir=args.data, out_dir=args.out, overrides=args.overrides,
                       file=args.config, show_progress=not (args.no_progress or args.json), merge=args.merge,
                       csv=args.csv)
    sections = {name: {"status": s["status"], "reason": s["reason"], "verdicts": s["verdicts"]}
                for name, s in results["sections"].items()}
    failed = any(s["status"] == "failed" for s in sections.values())
    if args.json:  # the same exit status as the table: CI gates read it
        print(dumps({"run_dir": args.out, "sections": sections, "answer": results.get("answer")}, indent=1))
        return 1 if failed else 0
    for name, s in sections.items():
        print(f"{name:<11} {s['status']:<11} {s['reason'] or ''}")
        for v in s["verdicts"]:
            print(f"    {v['level'].upper():<5} {v['text']}")
    if results.get("answer"):  # last, where the eye lands when the run ends
        print("\nanswer:")
        for line in results["answer"]["lines"]:
            print(f"  {line}")
    print(f"results: {args.out}/results.json   report: {args.out}/report.html")
    if missing_modules("report"):
        print(f"report.html has tables but no charts: matplotlib is not installed ({install_hint('report')})")
    return 1 if failed else 0
