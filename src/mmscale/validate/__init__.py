"""The main job, ``mmscale validate``: every section on one dataset, to results.json and report.html.

- ``config``: the ``[validate]`` table's dataclasses and ``load_configs`` (every table of a preset, once);
- ``run``: ``validate(...)`` runs the sections in order with the hardware monitor attached, and
  ``run_one_section`` runs one alone (what ``mmscale bench datascale|batchsweep|scaling`` call);
- ``sections`` and ``external``: one runner per section, calling ``mmscale.bench`` and turning its
  rows into the report's section shape; ``charts``: their chart specs; ``merge``: several
  invocations into one run directory.
"""

from mmscale.validate.config import SECTION_ORDER, Configs, Context, ValidateConfig, load_configs
from mmscale.validate.run import run_one_section, run_section, validate

__all__ = ["SECTION_ORDER", "Configs", "Context", "ValidateConfig", "load_configs", "run_one_section",
           "run_section", "validate"]
