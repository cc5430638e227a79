"""Cross-checks of mmscale's own GPU figures against independent ones, in one run.

1. Memory: the batch sweep's figure (``torch.cuda.max_memory_allocated``), the allocator's
   reserved bytes and the monitor's NVML used memory, against ``nvidia-smi`` for this process
   (``--query-compute-apps``) and for the GPU (``--query-gpu=memory.used``), read while the
   process still holds its memory after the steps (``base`` model, bf16, batches 32 and 128).
2. FLOPs and MFU: the ``FlopCounterMode`` count (``mmscale.train.flops``) against the count written
   out from the model's sizes (``mmscale.train.flops_analytic``); the step timed with CUDA events
   around N steps against the train-step benchmark's own per-step timing; MFU from each count over
   the same step time and the same peak (``ours`` settings: fused SDPA, bf16, compile, fused AdamW).
3. GPU activity: NVML utilization beside GPM SM and tensor-core activity, power and energy per
   sample, on launch-bound steps (``tiny`` preset at batch 8, ``base`` at batch 2) and a
   compute-bound step (``base``, batch 128), eager bf16, a few seconds each with the monitor sampling.

    PYTHONPATH=src python3 benchmarks/gpu_crosscheck.py --peak-tflops 772.6 --out runs/gpu_crosscheck  # GPU
    PYTHONPATH=src python3 benchmarks/gpu_crosscheck.py --smoke --out runs/gpu_crosscheck_smoke  # CPU smoke

``--out DIR`` writes ``gpu_crosscheck.json``; the table with the ratios is printed last. On one
H100 the GPU command takes about 3 minutes (torch.compile of the MFU step is most of it);
772.6 TFLOP/s is the measured bf16 matmul ceiling BENCHMARKS.md quotes MFU against.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

MIB = 2**20
SMOKE_MODEL = ["model.image_size=32", "model.image_depth=2", "model.max_text_len=16", "model.hidden_dim=64",
               "model.num_heads=4", "model.fusion_layers=1"]
# Launch-bound: the tiny model, and the base model at batch 2 (kernels too small to fill the GPU);
# compute-bound: the base model at batch 128, the train-step benchmark's batch.
DEFAULT_PHASES = "launch_bound_tiny=tiny:8,launch_bound_base=base:2,compute_bound=base:128"
SMOKE_PHASES = "launch_bound=tiny:2,compute_bound=tiny:8"
MEMORY_GAP = ("nvidia-smi's per-process figure = the CUDA context (driver state plus the kernel images of "
              "every library loaded; with lazy module loading it grows as kernels are first used) + all the "
              "caching allocator holds (torch memory_reserved: live tensors, cached free blocks, fragmentation). "
              "max_memory_allocated, the batch sweep's figure, counts only live tensors at the peak, so "
              "allocated < reserved < nvidia-smi process; reserved + context should match nvidia-smi process. "
              "nvidia-smi memory.used (GPU) adds other processes and driver reservations; the monitor reads "
              "NVML's memory info (v1, what the monitor reads) counts the driver's reserved memory as used; "
              "nvidia-smi lists it apart (memory.reserved), so NVML used = nvidia-smi used + reserved.")
FLOPS_NOTE = ("Model FLOPs (the MFU convention) count forward + backward = 3x forward for every matmul, "
              "1x backward for the patch embedding (pixels need no gradient), no recomputation. "
              "FlopCounterMode's SDPA backward formula also counts the fused kernels' recompute of QK^T "
              "(0.5x the attention forward), so counted = analytic model FLOPs + recompute.")


def load_train_step_bench():
    """benchmarks/train_step.py, for its step construction and its own step timing."""
    path = Path(__file__).resolve().with_name("train_step.py")
    spec = importlib.util.spec_from_file_location("bench_train_step", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_train_step"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="base", help="model preset of the memory, MFU and compute-bound runs")
    parser.add_argument("--memory-batches", default="32,128", help="comma-separated batch sizes of the memory check")
    parser.add_argument("--mfu-batch", type=int, default=128, help="batch of the FLOP/MFU check")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per timing block")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps before timing (compilation here)")
    parser.add_argument("--no-compile", action="store_true", help="MFU check without torch.compile")
    parser.add_argument("--phases", default=DEFAULT_PHASES,
                        help="activity phases, comma-separated NAME=PRESET:BATCH (eager steps, bf16 on GPU)")
    parser.add_argument("--phase-s", type=float, default=8.0, help="seconds of steps per activity phase")
    parser.add_argument("--interval-s", type=float, default=0.1, help="monitor sampling interval")
    parser.add_argument("--peak-tflops", type=float, default=0.0, help="peak for MFU (default: GPU table)")
    parser.add_argument("--device", default="auto", help="auto | cuda | cpu")
    parser.add_argument("--smoke", action="store_true", help="CPU smoke test: tiny sizes, short phases")
    parser.add_argument("--out", default=None, help="directory for gpu_crosscheck.json")
    args = parser.parse_args(argv)
    try:
        args.memory_batches = [int(b) for b in str(args.memory_batches).split(",") if b.strip()]
    except ValueError:
        parser.error(f"--memory-batches: expected integers separated by commas, got '{args.memory_batches}'")
    for name in ("mfu_batch", "steps"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')}: must be >= 1, got {getattr(args, name)}")
    if not args.memory_batches or min(args.memory_batches) < 1:
        parser.error("--memory-batches: needs at least one batch size >= 1")
    if args.phase_s <= 0 or args.interval_s <= 0:
        parser.error("--phase-s and --interval-s: must be > 0")
    try:
        parse_phases(args.phases)
    except ValueError as exc:
        parser.error(f"--phases: {exc}")
    args.overrides = []
    if args.smoke:
        args.preset, args.device, args.no_compile, args.phases = "tiny", "cpu", True, SMOKE_PHASES
        args.memory_batches, args.mfu_batch = [2, 4], 4
        args.steps, args.warmup, args.phase_s, args.interval_s = 2, 1, 0.5, 0.1
        args.overrides = list(SMOKE_MODEL)
    return args


def parse_phases(text: str) -> list[tuple[str, str, int]]:
    """'name=preset:batch,...' -> [(name, preset, batch)]; ValueError naming the bad entry."""
    phases = []
    for entry in (e.strip() for e in text.split(",") if e.strip()):
        name, _, spec = entry.partition("=")
        preset, _, batch = spec.partition(":")
        if not name or not preset or not batch.isdigit() or int(batch) < 1:
            raise ValueError(f"'{entry}' is not NAME=PRESET:BATCH with BATCH >= 1")
        phases.append((name, preset, int(batch)))
    if not phases:
        raise ValueError("needs at least one NAME=PRESET:BATCH")
    return phases


# -- nvidia-smi, parsed as pure functions ----------------------------------------------------------

def parse_compute_apps(text: str) -> list[dict]:
    """``pid, used_memory, gpu_uuid`` CSV rows (noheader, nounits) -> [{pid, used_mib, gpu_uuid}]."""
    apps = []
    for line in text.strip().splitlines():
        cells = [c.strip() for c in line.split(",")]
        if len(cells) < 2 or not cells[0].isdigit():
            continue
        try:
            used = float(cells[1])
        except ValueError:  # "[N/A]" where the driver hides per-process memory
            continue
        apps.append({"pid": int(cells[0]), "used_mib": used, "gpu_uuid": cells[2] if len(cells) > 2 else ""})
    return apps


def parse_gpus(text: str) -> list[dict]:
    """``uuid, memory.used, memory.total[, memory.reserved]`` CSV rows -> [{gpu_uuid, used_mib,
    total_mib, reserved_mib}] (reserved None where the column is missing or not a number)."""
    gpus = []
    for line in text.strip().splitlines():
        cells = [c.strip() for c in line.split(",")]
        if len(cells) >= 3:
            try:
                gpu = {"gpu_uuid": cells[0], "used_mib": float(cells[1]), "total_mib": float(cells[2])}
            except ValueError:
                continue
            try:
                gpu["reserved_mib"] = float(cells[3]) if len(cells) > 3 else None
            except ValueError:
                gpu["reserved_mib"] = None
            gpus.append(gpu)
    return gpus


def pick_process(apps: list[dict], pid: int, gpu_uuid: str) -> tuple[float | None, str]:
    """This process's MiB on its GPU, and how it was found (a container may show other pids)."""
    mine = [a for a in apps if a["pid"] == pid and (not gpu_uuid or a["gpu_uuid"] in ("", gpu_uuid))]
    if mine:
        return sum(a["used_mib"] for a in mine), "matched by pid"
    on_gpu = [a for a in apps if not gpu_uuid or a["gpu_uuid"] == gpu_uuid]
    if len(on_gpu) == 1:
        return on_gpu[0]["used_mib"], (f"pid {pid} not listed (another pid namespace); the only compute "
                                       f"app on this GPU (pid {on_gpu[0]['pid']}) taken as this process")
    return None, f"not available: pid {pid} not among {len(on_gpu)} compute app(s) nvidia-smi lists on this GPU"


def pick_gpu(gpus: list[dict], gpu_uuid: str) -> tuple[dict | None, str]:
    for gpu in gpus:
        if gpu["gpu_uuid"] == gpu_uuid:
            return gpu, "matched by uuid"
    if len(gpus) == 1:
        return gpus[0], "the only GPU listed"
    return None, f"not available: uuid {gpu_uuid!r} not among {len(gpus)} GPUs"


def ratio(num: float | None, den: float | None) -> float | None:
    return None if num is None or not den else num / den


def nvidia_smi(query: str) -> tuple[str | None, str]:
    """Raw CSV of one nvidia-smi query, or None and why not."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None, "not available: nvidia-smi not on PATH"
    try:
        done = subprocess.run([exe, query, "--format=csv,noheader,nounits"], capture_output=True, text=True,
                              timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"not available: nvidia-smi failed ({type(exc).__name__})"
    if done.returncode:
        return None, f"not available: nvidia-smi exit {done.returncode}: {done.stderr.strip()[:200]}"
    return done.stdout, "ok"


def device_uuid(device) -> str:
    """'GPU-xxxxxxxx-...' as nvidia-smi and NVML print it ('' when torch cannot say)."""
    import torch

    uuid = getattr(torch.cuda.get_device_properties(device), "uuid", None)
    if uuid is None:
        return ""
    text = str(uuid)
    return text if text.startswith("GPU-") else f"GPU-{text}"


def smi_reading(device) -> dict:
    """nvidia-smi's process and GPU memory, now."""
    if device.type != "cuda":
        return {"smi_process_mib": None, "smi_gpu_mib": None,
                "smi_note": "not available: CPU run (no GPU memory; nvidia-smi not queried)"}
    uuid = device_uuid(device)
    apps_text, apps_note = nvidia_smi("--query-compute-apps=pid,used_memory,gpu_uuid")
    gpus_text, gpus_note = nvidia_smi("--query-gpu=uuid,memory.used,memory.total,memory.reserved")
    if gpus_text is None:  # drivers before memory.reserved existed
        gpus_text, gpus_note = nvidia_smi("--query-gpu=uuid,memory.used,memory.total")
    process_mib, process_note = (None, apps_note) if apps_text is None else pick_process(
        parse_compute_apps(apps_text), os.getpid(), uuid)
    gpu, gpu_note = (None, gpus_note) if gpus_text is None else pick_gpu(parse_gpus(gpus_text), uuid)
    return {"smi_process_mib": process_mib, "smi_gpu_mib": gpu["used_mib"] if gpu else None,
            "smi_gpu_reserved_mib": gpu.get("reserved_mib") if gpu else None,
            "smi_note": f"process: {process_note}; gpu: {gpu_note}"}


def nvml_index(device) -> int:
    """The NVML index of the torch device (CUDA_VISIBLE_DEVICES may renumber), by uuid."""
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception:  # no NVML: the monitor has no GPU fields either
        return device.index or 0
    try:
        wanted = device_uuid(device)
        for i in range(pynvml.nvmlDeviceGetCount()):
            uuid = pynvml.nvmlDeviceGetUUID(pynvml.nvmlDeviceGetHandleByIndex(i))
            if (uuid.decode() if isinstance(uuid, bytes) else uuid) == wanted:
                return i
    except Exception:
        pass
    finally:
        pynvml.nvmlShutdown()
    return device.index or 0


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _error(exc: BaseException) -> str:
    from mmscale.bench.batchsweep import is_oom

    return "oom" if is_oom(exc) else f"error: {type(exc).__name__}: {str(exc)[:300]}"


# -- 1. memory ---------------------------------------------------------------------------------------

def context_reading(device) -> dict:
    """nvidia-smi's figure for this process before any model: the CUDA context (+ one 2 MiB block)."""
    import torch

    if device.type != "cuda":
        return {"context_mib": None, "note": "not available: CPU run"}
    torch.zeros(1, device=device)
    _sync(device)
    reading = smi_reading(device)
    reserved_mib = torch.cuda.memory_reserved(device) / MIB
    process_mib = reading["smi_process_mib"]
    return {"context_mib": None if process_mib is None else process_mib - reserved_mib,
            "smi_process_mib": process_mib, "torch_reserved_mib": reserved_mib, "note": reading["smi_note"]}


def memory_row(make, batch: int, args, device, gpu: int, context_mib: float | None) -> dict:
    """Steps at ``batch`` under the batch sweep's meter, then every figure read while memory is held."""
    import torch

    from mmscale.bench import batchsweep as bs
    from mmscale.monitor import HardwareMonitor
    from mmscale.monitor.nvml import NvmlProbe

    cuda = device.type == "cuda"
    row: dict = {"batch": batch, "status": "ok"}
    bs.free_memory()
    meter = bs.PeakMemory(str(device))
    step = None
    try:
        with HardwareMonitor(interval_s=args.interval_s) as monitor:
            with meter:
                step = make(batch)
                for _ in range(args.warmup + min(args.steps, 5)):
                    step()
                _sync(device)  # host-device sync: every step's memory is taken before reading
        sweep_bytes = meter.peak_bytes() if meter.kind == "gpu_allocated" else meter.peak_delta_bytes()
        row.update(sweep_kind=meter.kind, sweep_peak_mib=sweep_bytes / MIB)
        gpu_field = f"gpu{gpu}_mem_used_gib"
        monitor_max = monitor.summary()["fields"].get(gpu_field, {}).get("max")
        row["monitor_max_used_mib"] = None if monitor_max is None else monitor_max * 1024
        if cuda:
            row.update(torch_max_reserved_mib=torch.cuda.max_memory_reserved(device) / MIB,
                       torch_reserved_mib=torch.cuda.memory_reserved(device) / MIB,
                       torch_allocated_now_mib=torch.cuda.memory_allocated(device) / MIB)
            probe = NvmlProbe(use_gpm=False)
            used_gib = probe.read().get(gpu_field) if probe.available else None
            probe.close()
            row["nvml_used_mib"] = None if used_gib is None else used_gib * 1024
        row.update(smi_reading(device))
    except Exception as exc:  # one failing batch must not lose the others' figures
        row["status"] = _error(exc)
    finally:
        del step
        bs.free_memory()
    process = row.get("smi_process_mib")
    reserved = row.get("torch_reserved_mib")
    row["allocated_over_smi_process"] = ratio(row.get("sweep_peak_mib") if cuda else None, process)
    row["reserved_over_smi_process"] = ratio(reserved, process)
    row["reserved_plus_context_over_smi_process"] = ratio(
        None if reserved is None or context_mib is None else reserved + context_mib, process)
    row["smi_process_minus_reserved_mib"] = None if process is None or reserved is None else process - reserved
    row["nvml_over_smi_gpu"] = ratio(row.get("nvml_used_mib"), row.get("smi_gpu_mib"))
    nvml, smi_gpu, smi_reserved = row.get("nvml_used_mib"), row.get("smi_gpu_mib"), row.get("smi_gpu_reserved_mib")
    row["nvml_minus_smi_gpu_mib"] = None if nvml is None or smi_gpu is None else nvml - smi_gpu
    row["nvml_over_smi_gpu_plus_reserved"] = ratio(nvml, None if smi_gpu is None or smi_reserved is None
                                                   else smi_gpu + smi_reserved)
    row["monitor_max_over_smi_gpu"] = ratio(row.get("monitor_max_used_mib"), row.get("smi_gpu_mib"))
    return row


def memory_section(args, device, gpu: int) -> dict:
    from mmscale.bench import batchsweep as bs
    from mmscale.config.load import load_config
    from mmscale.model import ModelConfig
    from mmscale.train.config import TrainConfig

    context = context_reading(device)
    model_cfg = load_config(ModelConfig, preset=args.preset, section="model", overrides=args.overrides)
    train_cfg = dataclasses.replace(load_config(TrainConfig, preset=args.preset, section="train"), compile=False)
    make = bs.model_step_factory(model_cfg, train_cfg, "bf16", str(device))  # the sweep's bf16 variant
    rows = [memory_row(make, batch, args, device, gpu, context["context_mib"]) for batch in args.memory_batches]
    return {"variant": "bf16 (batch sweep)", "context": context, "rows": rows, "expected_gap": MEMORY_GAP}


# -- 2. FLOPs, step time, MFU ---------------------------------------------------------------------------

def event_ms(run, steps: int, device) -> tuple[float, str]:
    """Mean ms per step over ``steps`` back-to-back steps: CUDA events, no host sync in between."""
    import torch

    if device.type != "cuda":
        t0 = time.perf_counter()
        for _ in range(steps):
            run()
        return 1000 * (time.perf_counter() - t0) / steps, "perf_counter around N steps (CPU: no CUDA events)"
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(steps):
        run()
    end.record()
    end.synchronize()  # host-device sync: the one read of the block's time
    return start.elapsed_time(end) / steps, "CUDA events around N steps"


def flops_section(args, device, bench) -> dict:
    import statistics

    import torch

    from mmscale.config.load import load_config
    from mmscale.model import ModelConfig, MultimodalModel
    from mmscale.train.flops import count_train_flops, mfu, peak_tflops
    from mmscale.train.flops_analytic import train_step_flops
    from mmscale.train.optim import build_optimizer
    from mmscale.train.precision import Precision
    from mmscale.train.step import TrainStep
    from mmscale.train.synthetic import synthetic_batch

    settings = bench.SETTINGS["ours"]
    batch, cuda = args.mfu_batch, device.type == "cuda"
    cfg = load_config(ModelConfig, preset=args.preset, section="model",
                      overrides=[*args.overrides, f"model.fusion={settings.fusion}"])
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = settings.tf32
        torch.backends.cudnn.allow_tf32 = settings.tf32
    torch.manual_seed(0)
    model = MultimodalModel(cfg).to(device)
    optimizer = build_optimizer(model, 1e-4, 0.05, fused=settings.fused_adamw and cuda)
    precision = Precision.resolve(settings.precision if cuda else "fp32", device)
    pixels, ids, mask = synthetic_batch(cfg, batch, device)
    counted = count_train_flops(model, pixels, ids, mask, precision.autocast())
    analytic = train_step_flops(cfg, batch)
    status = "ok"
    use_compile = settings.compile and not args.no_compile
    step = TrainStep(model, optimizer, None, precision, compile=use_compile, grad_clip=1.0)
    try:
        for _ in range(args.warmup):
            step(pixels, ids, mask)
    except Exception as exc:  # a compiler failure must not lose the count; time the eager step
        if not use_compile:
            raise
        status, use_compile = f"ok (compile failed, eager: {type(exc).__name__})", False
        step = TrainStep(model, optimizer, None, precision, compile=False, grad_clip=1.0)
        for _ in range(args.warmup):
            step(pixels, ids, mask)
    _sync(device)

    def run():
        step(pixels, ids, mask)

    events_a, how = event_ms(run, args.steps, device)
    times, _ = bench.time_steps(run, lambda: _sync(device), 0, args.steps)  # the train-step benchmark's timing
    events_b, _ = event_ms(run, args.steps, device)
    step_ms_events = (events_a + events_b) / 2
    step_ms_ours = statistics.median(times)
    peak = peak_tflops(device, args.peak_tflops)
    step_s = step_ms_events / 1000
    return {
        "status": status, "batch": batch, "compile": use_compile, "precision": precision.name,
        "counted_flops": counted, "counted_gflops_per_sample": counted / batch / 1e9,
        "analytic": analytic.as_dict(),
        "analytic_over_counted": analytic.total / counted,
        "analytic_with_recompute_over_counted": analytic.total_with_recompute / counted,
        "note": FLOPS_NOTE,
        "step_ms_events": step_ms_events, "step_ms_events_blocks": [events_a, events_b], "events_method": how,
        "step_ms_train_step_bench": step_ms_ours,
        "train_step_bench_method": "median of per-step perf_counter with a device sync after each step",
        "events_over_train_step_bench": step_ms_events / step_ms_ours,
        "peak_tflops": peak,
        "mfu_counted": mfu(counted, 1, step_s, peak),
        "mfu_analytic": mfu(analytic.total, 1, step_s, peak),
        "mfu_counted_train_step_timing": mfu(counted, 1, step_ms_ours / 1000, peak),
        "mfu_note": None if peak else "no peak for this device (CPU): MFU not computed",
    }


# -- 3. GPU activity: NVML utilization vs GPM, power, energy ------------------------------------------

ACTIVITY_FIELDS = {"nvml_util_pct": "util_pct", "gpm_sm_active_pct": "sm_active_pct",
                   "gpm_tensor_active_pct": "tensor_active_pct", "power_w": "power_w",
                   "sm_clock_mhz": "sm_clock_mhz"}


def phase_means(rows: list[dict], gpu: int) -> dict:
    """Mean of each GPU field over the samples after the first (whose NVML utilization and GPM
    interval cover time before the phase began); None where no sample had the field."""
    out = {}
    for name, key in ACTIVITY_FIELDS.items():
        values = [r[f"gpu{gpu}_{key}"] for r in rows[1:] if r.get(f"gpu{gpu}_{key}") is not None]
        out[name] = sum(values) / len(values) if values else None
    return out


def activity_phase(name: str, preset: str, batch: int, args, device, gpu: int) -> dict:
    """Eager bf16 steps (fp32 on CPU) for ``phase_s`` seconds with the monitor sampling."""
    import torch

    from mmscale.config.load import load_config
    from mmscale.model import ModelConfig, MultimodalModel
    from mmscale.monitor import HardwareMonitor, joules_per_item
    from mmscale.train.optim import build_optimizer
    from mmscale.train.precision import Precision
    from mmscale.train.step import TrainStep
    from mmscale.train.synthetic import synthetic_batch

    cuda = device.type == "cuda"
    cfg = load_config(ModelConfig, preset=preset, section="model", overrides=args.overrides)
    torch.manual_seed(0)
    model = MultimodalModel(cfg).to(device)
    optimizer = build_optimizer(model, 1e-4, 0.05, fused=cuda)
    step = TrainStep(model, optimizer, None, Precision.resolve("bf16" if cuda else "fp32", device), grad_clip=1.0)
    pixels, ids, mask = synthetic_batch(cfg, batch, device)
    for _ in range(args.warmup):
        step(pixels, ids, mask)
    _sync(device)
    with HardwareMonitor(interval_s=args.interval_s) as monitor:
        started, steps = time.perf_counter(), 0
        while time.perf_counter() - started < args.phase_s:
            step(pixels, ids, mask)
            steps += 1
        _sync(device)  # host-device sync: the queued steps finish inside the monitored span
        wall_s = time.perf_counter() - started
    samples = steps * batch
    summary = monitor.summary()
    energy = monitor.energy_j().get(f"gpu{gpu}", {"energy_j": None, "source": "not available"})
    row = {"phase": name, "preset": preset, "batch": batch, "steps": steps, "samples": samples,
           "wall_s": wall_s, "step_ms": 1000 * wall_s / steps, "samples_per_s": samples / wall_s,
           "monitor_samples": summary["n_samples"], "monitor_hz": summary["achieved_hz"],
           "activity_source": (monitor.last_row or {}).get(f"gpu{gpu}_activity_source"),
           **phase_means(monitor.rows(), gpu),
           "energy_j": energy["energy_j"], "energy_source": energy["source"],
           "energy_j_per_sample": joules_per_item(energy["energy_j"], samples)}
    if not summary["gpu_count"]:
        row["note"] = f"not available: no GPU fields ({summary['gpu_note']})"
    elif row["gpm_sm_active_pct"] is None:
        row["note"] = "GPM not available on this GPU/driver: NVML utilization only"
    return row


def activity_section(args, device, gpu: int) -> dict:
    from mmscale.bench.batchsweep import free_memory

    phases = []
    for name, preset, batch in parse_phases(args.phases):
        try:
            phases.append(activity_phase(name, preset, batch, args, device, gpu))
        except Exception as exc:
            phases.append({"phase": name, "preset": preset, "batch": batch, "status": _error(exc)})
        finally:
            free_memory()
    return {"phases": phases,
            "note": ("NVML utilization is the share of time any kernel ran; GPM SM activity is how busy the "
                     "SMs were, tensor activity how busy the tensor cores were. In a launch-bound step the "
                     "host issues kernels slower than the GPU runs them: NVML utilization falls below 100% "
                     "(idle gaps) and still reads above SM activity, since one small kernel in flight counts "
                     "as busy. Energy per sample includes the idle power of those gaps.")}


# -- table and main ---------------------------------------------------------------------------------

def fmt(value, spec: str = ".1f", suffix: str = "") -> str:
    return "-" if value is None else f"{value:{spec}}{suffix}"


def format_table(result: dict) -> str:
    lines = []
    memory = result["sections"].get("memory", {})
    if "rows" in memory:
        lines.append(f"memory (CUDA context at start: {fmt(memory['context'].get('context_mib'))} MiB)")
        lines.append(f"{'batch':>5} {'sweep MiB':>10} {'reserved':>9} {'smi proc':>9} {'proc-res':>9} "
                     f"{'alloc/proc':>10} {'(res+ctx)/proc':>14} {'NVML MiB':>9} {'smi GPU':>8} {'NVML-smi':>8} "
                     f"{'NVML/(smi+rsv)':>14}  status")
        for r in memory["rows"]:
            lines.append(f"{r['batch']:>5} {fmt(r.get('sweep_peak_mib')):>10} {fmt(r.get('torch_reserved_mib')):>9} "
                         f"{fmt(r.get('smi_process_mib')):>9} {fmt(r.get('smi_process_minus_reserved_mib')):>9} "
                         f"{fmt(r.get('allocated_over_smi_process'), '.3f'):>10} "
                         f"{fmt(r.get('reserved_plus_context_over_smi_process'), '.3f'):>14} "
                         f"{fmt(r.get('nvml_used_mib')):>9} {fmt(r.get('smi_gpu_mib')):>8} "
                         f"{fmt(r.get('nvml_minus_smi_gpu_mib')):>8} "
                         f"{fmt(r.get('nvml_over_smi_gpu_plus_reserved'), '.3f'):>14}  {r['status']}")
            if r.get("smi_note"):
                lines.append(f"      nvidia-smi: {r['smi_note']}")
    flops = result["sections"].get("flops", {})
    if "counted_flops" in flops:
        a = flops["analytic"]
        lines.append(f"FLOPs/sample at batch {flops['batch']}: counted {flops['counted_gflops_per_sample']:.2f} GFLOP, "
                     f"analytic {a['gflops_per_sample']:.2f} (model) / {a['gflops_per_sample_with_recompute']:.2f} "
                     f"(+ SDPA recompute); analytic/counted {flops['analytic_over_counted']:.4f}, "
                     f"with recompute {flops['analytic_with_recompute_over_counted']:.4f}")
        lines.append(f"step ms: {flops['events_method']} {flops['step_ms_events']:.2f} vs train_step.py timing "
                     f"{flops['step_ms_train_step_bench']:.2f}: ratio {flops['events_over_train_step_bench']:.3f}")
        lines.append(f"MFU (peak {fmt(flops['peak_tflops'])} TFLOP/s): counted {fmt(flops['mfu_counted'], '.2%')}, "
                     f"analytic {fmt(flops['mfu_analytic'], '.2%')}  [{flops['status']}]")
    elif flops:
        lines.append(f"FLOPs/MFU: {flops.get('status')}")
    activity = result["sections"].get("activity", {})
    if activity:
        lines.append(f"{'phase':<18} {'batch':>5} {'step ms':>8} {'NVML util':>9} {'GPM SM':>7} {'tensor':>7} "
                     f"{'power W':>8} {'J/sample':>9}  source")
        for p in activity["phases"]:
            if "status" in p:
                lines.append(f"{p['phase']:<18} {p['batch']:>5}  {p['status']}")
                continue
            lines.append(f"{p['phase']:<18} {p['batch']:>5} {p['step_ms']:>8.1f} {fmt(p['nvml_util_pct'], '.1f', '%'):>9} "
                         f"{fmt(p['gpm_sm_active_pct'], '.1f', '%'):>7} {fmt(p['gpm_tensor_active_pct'], '.1f', '%'):>7} "
                         f"{fmt(p['power_w']):>8} {fmt(p['energy_j_per_sample'], '.4f'):>9}  "
                         f"{p.get('activity_source') or p.get('note', '-')}")
    return "\n".join(lines)


def run_section(fn, *fn_args) -> dict:
    """One section's figures, or its error; what it allocated is freed before the next starts."""
    from mmscale.bench.batchsweep import free_memory

    try:
        return fn(*fn_args)
    except Exception as exc:  # one failing section must not lose the others' figures
        return {"status": _error(exc)}
    finally:
        free_memory()


def main(argv=None) -> dict:
    args = parse_args(argv)
    import torch

    bench = load_train_step_bench()
    device = bench.resolve_device(args.device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    gpu = nvml_index(device) if device.type == "cuda" else 0
    started = time.perf_counter()
    sections = {"memory": run_section(memory_section, args, device, gpu),
                "flops": run_section(flops_section, args, device, bench),
                "activity": run_section(activity_section, args, device, gpu)}
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    result = {"device": name, "torch": torch.__version__, "preset": args.preset, "smoke": args.smoke,
              "wall_s": time.perf_counter() - started, "sections": sections}
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        (Path(args.out) / "gpu_crosscheck.json").write_text(json.dumps(result, indent=2))
    print(f"{name}, torch {torch.__version__}, preset {args.preset}, {result['wall_s']:.0f} s")
    print(format_table(result))
    return result


if __name__ == "__main__":
    main()
