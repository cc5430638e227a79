"""The server's start-up cost per CUDA-graph setting: a CPU start timed for real, the log line read."""

import inspect

from mmscale.bench.serving.startup import RECORDED, bench_startup, format_startup, server_args
from mmscale.serve.predictor import ModelPredictor


def test_a_cpu_start_is_timed_and_no_device_memory_is_made_up(capsys):
    doc = bench_startup(["none"], server_args("base", 256, 4, cpu_smoke=True))
    (row,) = doc["rows"]
    # no graphs on CPU, and no NVML figure is made up where there is no GPU
    assert row["setting"] == "no graphs" and row["graphs"] == 0 and row["ready_vs_first"] == 1.0
    assert 0 < row["ready_s"] < 120
    if doc["idle_device_gib"] is None:
        assert row["memory_gib"] is None
    assert doc["server_args"][:2] == ["--preset", "tiny"] and "--cpu-threads" in doc["server_args"]
    assert "no graphs: ready in" in capsys.readouterr().out
    assert format_startup(doc["rows"]).splitlines()[-1].startswith("no graphs")


def test_the_graph_count_is_read_from_the_line_the_server_logs():
    line = "INFO mmscale.serve.predictor: CUDA graphs: recorded 95 of 95 small-batch shapes (batches up to 64)"
    found = RECORDED.search(line)
    assert (found.group(1), found.group(2)) == ("95", "95")
    # the pattern must follow the log line the predictor writes
    assert "CUDA graphs: recorded %d of %d" in inspect.getsource(ModelPredictor.use_graphs)
