"""``mmscale bench index-memory`` at a tiny size (CPU smoke): both layouts measured, JSON written."""

import json
import os

from mmscale.bench.index_memory import pss_bytes
from mmscale.cli import main


def test_smoke(tmp_path, capsys):
    assert main(["bench", "index-memory", "--rows", "20000", "--naive-rows", "20000", "--workers", "2",
                 "--batch-size", "1024", "--interval-s", "0.05", "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "index_memory.json").read_text())
    layouts = {r["layout"]: r for r in result["rows"]}
    assert set(layouts) == {"columnar", "list_of_dicts"}
    for r in layouts.values():
        assert r["visited"] == 20000 and r["pss_start_mib"] > 0 and r["pss_peak_mib"] >= r["pss_start_mib"]
    assert "PSS" in capsys.readouterr().out


def test_pss_of_this_process():
    pss, rss, uss = pss_bytes(os.getpid())
    assert 0 < uss <= pss <= rss
