"""The report's monitor charts: the main thread's CPU and wait shares are drawn when sampled."""

from mmscale.validate_charts import monitor_charts


def test_main_thread_series_appear_only_when_sampled():
    rows = [{"t_s": 0.2 * i, "cpu_pct": 150.0, "rss_gib": 1.0, "main_thread_cpu_pct": 90.0,
             "main_thread_wait_pct": 5.0 * i} for i in range(4)]
    names = [s["label"] for s in monitor_charts(rows)[0]["series"]]
    assert "main thread CPU %" in names and "main thread waiting for a core %" in names
    bare = [{k: v for k, v in r.items() if not k.startswith("main_thread")} for r in rows]
    assert not any(s["label"].startswith("main thread") for s in monitor_charts(bare)[0]["series"])
