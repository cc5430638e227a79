"""The ``mmscale`` command: a thin layer that parses, builds a config, calls, prints.

Every command lives in its own module under ``mmscale.cli`` with ``register(subparsers)``,
which adds its parser and sets ``run=function(args) -> int``, and ``ORDER`` (its place in
``--help``). A command with subcommands is a package (``cli/bench/``) whose modules register the
same way under it. The work itself is done by library functions that return data, so tests and
notebooks call them without the CLI.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys

from mmscale import __version__
from mmscale.errors import MmscaleError


def command_modules(package: str = __name__) -> list:
    """The command modules of ``package`` (one with ``register``): the top-level commands here,
    or a command package's own (``mmscale.cli.bench``), in their ``ORDER``."""
    found = []
    for info in pkgutil.iter_modules(importlib.import_module(package).__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{package}.{info.name}")
        if hasattr(module, "register"):
            found.append(module)
    return sorted(found, key=lambda m: (getattr(m, "ORDER", 50), m.__name__))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mmscale",
        description=(
            "Find out whether an image+text model with cross-attention fusion scales, and where "
            "its time goes, before you spend a cluster's budget.\n\n"
            "Start with:  mmscale validate --preset cpu      (the whole suite on this machine)\n"
            "             mmscale data synth --n 5000 --out data/synth"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"mmscale {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="show debug logging")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in command_modules():
        module.register(subparsers)
    return parser


def parse(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """``parse_args``, except that KEY=VALUE overrides may follow flags (``train --resume
    train.steps=9``) and ``-v`` may follow the command; anything else unknown is an error from
    the command's own parser, with its usage."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args, extra = parser.parse_known_args(argv)
    unknown = []
    for token in extra:
        if token == "--":  # "the rest are positionals": they are read the same way
            continue
        if token in ("-v", "--verbose"):
            args.verbose = True
        elif hasattr(args, "overrides") and "=" in token and not token.startswith("-"):
            args.overrides = [*args.overrides, token]
        elif hasattr(args, "items") and not token.startswith("-"):  # mmscale config: prefixes too
            args.items = [*args.items, token]
        else:
            unknown.append(token)
    if unknown:
        command_parser(parser, argv).error(f"unrecognized arguments: {' '.join(unknown)}")
    return args


def command_parser(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.ArgumentParser:
    """The (sub)command parser that ``argv`` names: ``mmscale bench data ...`` -> bench data's."""
    for token in argv:
        choices = next((a.choices for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
        if choices is None:
            break
        if token in choices:
            parser = choices[token]
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parse(parser, argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:
        # transformers imports torchao's quantizer when torchao is installed, and torch then logs
        # a deprecation notice per enum it registers: nothing a user can act on
        logging.getLogger("torch.utils._pytree").setLevel(logging.ERROR)
    if not getattr(args, "run", None):
        parser.print_help()
        return 1
    try:
        return int(args.run(args) or 0)
    except MmscaleError as exc:
        print(f"mmscale: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        kept = getattr(args, "out", None) or getattr(args, "out_dir", None)
        print("mmscale: interrupted; " + (f"what was finished before it stays in {kept}" if kept else
                                          "what was finished before it stays written"), file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
