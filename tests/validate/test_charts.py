"""The report's monitor charts: one unit per chart, the main thread drawn when sampled, sections marked."""

from mmscale.validate.charts import monitor_charts


def test_main_thread_series_appear_only_when_sampled():
    rows = [{"t_s": 0.2 * i, "cpu_pct": 150.0, "rss_gib": 1.0, "main_thread_cpu_pct": 90.0,
             "main_thread_wait_pct": 5.0 * i} for i in range(4)]
    names = [s["label"] for s in monitor_charts(rows)[0]["series"]]
    assert "main thread CPU" in names and "main thread waiting for a core" in names
    bare = [{k: v for k, v in r.items() if not k.startswith("main_thread")} for r in rows]
    assert not any(s["label"].startswith("main thread") for s in monitor_charts(bare)[0]["series"])


def test_cpu_and_memory_are_separate_charts_with_section_marks_and_the_core_limit():
    rows = [{"t_s": 0.5 * i, "cpu_pct": 5000.0 if i == 2 else 150.0, "rss_gib": 1.0} for i in range(4)]
    marks = [{"t_s": 0.1, "mark": "data start"}, {"t_s": 0.3, "mark": "profile"}, {"t_s": 1.2, "mark": "load start"}]
    cpu, memory = monitor_charts(rows, marks, cores=16)
    assert (cpu["y_unit"], memory["y_unit"]) == ("% of one core", "GiB")
    assert [v["label"] for v in cpu["vlines"]] == ["data", "load"]
    assert cpu["hlines"] == [{"value": 1600.0, "label": "all 16 cores"}]
    assert cpu["caption"].startswith("⚠ 1 sample(s) above the red line")
