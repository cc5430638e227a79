"""Results file, answer, plots, HTML report and run comparison: everything that reads measured rows.

Nothing here measures: it reads results.json (or the dicts that become it) and presents. ``answer.answer``
says what a run concludes (throughput, bottleneck, predicted limits, changes ranked by measured gain);
``bounds`` flags figures outside physical bounds; ``predict`` holds the fits with intervals behind it.
"""

from mmscale.report.compare import compare_runs
from mmscale.report.html import render_report, write_report
from mmscale.report.results import read_results, write_results

__all__ = ["compare_runs", "render_report", "write_report", "read_results", "write_results"]
