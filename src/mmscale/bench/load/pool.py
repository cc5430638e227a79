"""Persistent load-generator processes, each given exactly one job per window.

Own processes with one pipe each (not a pool's shared queue), so every process runs its share
of a window at the same start time and no process ever runs two shares back to back.
"""

from __future__ import annotations

import multiprocessing as mp
import time

from mmscale.bench.load.client import Payload, WorkerJob, init_worker, run_job


def worker_main(conn, payloads: list[Payload]) -> None:
    init_worker(payloads)
    conn.send("ready")
    while True:
        job = conn.recv()
        if job is None:
            return
        try:
            conn.send(run_job(job))
        except Exception as exc:  # report, don't hang the parent
            conn.send({"error": f"{type(exc).__name__}: {exc}"})


class ClientPool:
    """``processes`` client processes ('spawn': no torch state inherited) holding the payloads."""

    def __init__(self, processes: int, payloads: list[Payload]):
        ctx = mp.get_context("spawn")
        self.workers = []
        for _ in range(processes):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=worker_main, args=(child, payloads), daemon=True)
            proc.start()
            self.workers.append((proc, parent))
        for _, conn in self.workers:
            if conn.recv() != "ready":
                raise RuntimeError("load-generator process failed to start")

    def __len__(self) -> int:
        return len(self.workers)

    def run(self, jobs: list[WorkerJob]) -> list[dict]:
        """Run ``jobs`` (at most one per process) and return their results in order."""
        if len(jobs) > len(self.workers):
            raise ValueError(f"{len(jobs)} jobs for {len(self.workers)} processes")
        for (_, conn), job in zip(self.workers, jobs):
            conn.send(job)
        results = [conn.recv() for (_, conn), _ in zip(self.workers, jobs)]
        for r in results:
            if "error" in r:
                raise RuntimeError(f"load-generator process failed: {r['error']}")
        return results

    def close(self) -> None:
        for proc, conn in self.workers:
            try:
                conn.send(None)
            except OSError:
                pass
        for proc, _ in self.workers:
            proc.join(5)
            if proc.is_alive():
                proc.terminate()

    def __enter__(self) -> "ClientPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def split_evenly(total: int, parts: int) -> list[int]:
    """``total`` into ``parts`` integers differing by at most one, zeros dropped."""
    shares = [total // parts + (1 if i < total % parts else 0) for i in range(parts)]
    return [s for s in shares if s > 0]


def window_jobs(url: str, mode: str, level: float, processes: int, window_s: float, max_requests: int,
                timeout_s: float, token: str | None, seed: int, lead_s: float = 0.3) -> list[WorkerJob]:
    """One window's jobs: closed-loop users or the open-loop rate split over the processes."""
    start_at = time.monotonic() + lead_s  # time for every process to receive its job
    if mode == "closed":
        shares = split_evenly(int(level), processes)
        budgets = split_evenly(max_requests, len(shares))
        return [WorkerJob(url, "closed", concurrency=c, duration_s=window_s, max_requests=b,
                          start_at=start_at, seed=seed + i, timeout_s=timeout_s, token=token)
                for i, (c, b) in enumerate(zip(shares, budgets))]
    budgets = split_evenly(max_requests, processes)
    return [WorkerJob(url, "open", rate_per_s=level / len(budgets), duration_s=window_s, max_requests=b,
                      start_at=start_at, seed=seed + 7 * i, timeout_s=timeout_s, token=token)
            for i, b in enumerate(budgets)]
