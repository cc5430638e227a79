"""The servers a serving benchmark starts: the ``mmscale serve`` arguments of each and the LitServe
peer's command (the runs themselves are covered by test_run.py)."""

from dataclasses import replace

from mmscale.bench.serving.config import SMOKE_DEFAULTS, ServeBenchConfig, smoke_config
from mmscale.bench.serving.servers import litserve_command, serve_args


def test_the_main_server_leaves_front_ends_and_graphs_to_the_host_unless_set():
    cfg = ServeBenchConfig(device="cuda")
    main = serve_args(cfg, "batched")
    assert not {"--frontends", "--max-batch", "--max-wait-ms"} & set(main) and not any("graphs" in a for a in main)
    given = serve_args(replace(cfg, max_batch=64, max_wait_ms=0.5), "batched")
    assert given[given.index("--max-batch") + 1] == "64" and given[given.index("--max-wait-ms") + 1] == "0.5"
    out = serve_args(replace(cfg, frontends=8, cuda_graphs=True), "batched")
    assert out[out.index("--frontends") + 1] == "8" and "--cuda-graphs" in out
    assert "--no-cuda-graphs" in serve_args(replace(cfg, cuda_graphs=False), "batched")
    naive = serve_args(replace(cfg, frontends=8, checkpoint="c.pt"), "naive")
    assert "--frontends" not in naive and naive[-2:] == ["--checkpoint", "c.pt"]


def test_a_smoke_run_gives_every_server_one_cpu_thread():
    cfg = smoke_config(cpu_smoke=True)
    for cmd in (serve_args(cfg, "batched"), serve_args(cfg, "naive"), litserve_command(cfg)):
        assert cmd[cmd.index("--cpu-threads") + 1] == "1" and cmd[cmd.index("--preset") + 1] == "tiny"
    assert "--cpu-threads" not in serve_args(ServeBenchConfig(), "batched") + litserve_command(ServeBenchConfig())


def test_the_smoke_settings_yield_to_fields_given():
    cfg = smoke_config(cpu_smoke=True, concurrency="2")
    assert cfg.concurrency == "2" and cfg.preset == SMOKE_DEFAULTS["preset"] == "tiny"
    assert smoke_config(concurrency="2").preset == "base"  # no smoke: the defaults


def test_the_litserve_peer_gets_the_batching_our_server_chooses_for_the_host():
    cuda = litserve_command(ServeBenchConfig(device="cuda"))
    assert cuda[cuda.index("--max-batch") + 1] == "256" and cuda[cuda.index("--max-wait-ms") + 1] == "1.0"
    assert "--cuda-graphs" in cuda
    cpu = litserve_command(ServeBenchConfig(device="cpu", max_batch=8))
    assert cpu[cpu.index("--max-batch") + 1] == "8" and cpu[cpu.index("--max-wait-ms") + 1] == "2.0"
    assert cpu[cpu.index("--api-servers") + 1] == "1" and "--cuda-graphs" not in cpu
