"""``mmscale config``: every config key, its value under a preset and overrides, and what it does."""

from __future__ import annotations

import argparse
import shutil
import textwrap

from mmscale.config.describe import describe, select, toml_value
from mmscale.config.load import load_config
from mmscale.errors import ConfigError
from mmscale.serve.config import ServeConfig
from mmscale.strict_json import dumps
from mmscale.validate import load_configs

ORDER = 80
TABLES = ("data", "model", "train", "serve", "validate")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "config", help="list config keys: value under a preset, default, and what each one does",
        description="List the keys that key=value overrides and TOML files set, with the value the "
                    "preset, file and overrides give, the default when it differs, and the comment that "
                    "explains the key (its trade-off, and the measurement behind its default where "
                    "there is one). Nothing runs.",
        epilog="examples:\n"
               "  mmscale config --preset base train            every train.* key of the base preset\n"
               "  mmscale config --preset base data.decode       one key\n"
               "  mmscale config --preset gpu validate.scaling    a nested table\n"
               "  mmscale config --preset base --changed        what the preset sets\n"
               "  mmscale config --preset base train.compile=false train.compile\n"
               "                                              (the value an override leaves)\n\n"
               f"tables: {', '.join(TABLES)}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--preset", default=None, help="named preset (tiny, base, cpu, gpu); default: none")
    parser.add_argument("--config", default=None, help="TOML file layered over the preset")
    parser.add_argument("--changed", action="store_true", help="only keys whose value differs from the default")
    parser.add_argument("--json", action="store_true", help="print the keys as JSON")
    parser.add_argument("items", nargs="*", metavar="KEY_PREFIX|KEY=VALUE",
                        help="keys to show (prefixes, e.g. train or train.ddp), and overrides")
    parser.set_defaults(run=run)


def run(args) -> int:
    overrides = [item for item in args.items if "=" in item]
    prefixes = [item for item in args.items if "=" not in item]
    keys = load_keys(args.preset, args.config, overrides)
    for prefix in prefixes:
        if not select(keys, [prefix]):
            raise ConfigError(prefix, f"no such key or table (tables: {', '.join(TABLES)})")
    shown = [k for k in select(keys, prefixes) if k.changed or not args.changed]
    if args.json:
        print(dumps([k.as_dict() for k in shown], indent=1, default=str))
    else:
        print(format_keys(shown))
    return 0


def load_keys(preset: str | None, file: str | None, overrides: list[str]):
    """Each table loaded as the commands load it (so values are validated the same way)."""
    serve = [o for o in overrides if o.split(".", 1)[0].strip() == "serve"]
    configs = load_configs(preset, [o for o in overrides if o not in serve], file=file)
    tables = {"data": configs.job.data, "model": configs.job.model, "train": configs.job.train,
              "serve": load_config(ServeConfig, preset=preset, file=file, overrides=serve, section="serve"),
              "validate": configs.validate}
    return [key for name in TABLES for key in describe(tables[name], name)]


def format_keys(keys) -> str:
    """``key = value  (type; default X)`` then the comment, indented, one blank line between keys."""
    width = max(60, min(100, shutil.get_terminal_size((100, 20)).columns))
    blocks = []
    for k in keys:
        note = k.type + ("" if not k.changed else f"; default {toml_value(k.default)}")
        head = f"{k.key} = {toml_value(k.value)}  ({note})"
        body = "\n".join(textwrap.fill(par, width, initial_indent="    ", subsequent_indent="    ")
                         for par in k.doc.split("\n\n") if par.strip()) if k.doc else "    (no description)"
        blocks.append(f"{head}\n{body}")
    return "\n\n".join(blocks) if blocks else "no keys"
