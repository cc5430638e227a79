"""What ``mmscale bench serve`` concludes from its results, as pure functions over the JSON document:
the ratios the targets are stated in, and one line per server of the LitServe comparison."""

from __future__ import annotations


def closed_row(rows: list[dict], concurrency: int) -> dict | None:
    return next((r for r in rows if r["mode"] == "closed" and r["concurrency"] == concurrency), None)


def ratios(results: dict, levels: list[int], naive_levels: list[int]) -> dict:
    """ours / naive at the highest level both ran (else each at its top), ours / offline, p50 at the
    lowest level, the servers' batches and CPU, and the overload figures when there was one."""
    def row(server, c):
        return closed_row(results[server]["rows"], c)

    common = set(levels) & set(naive_levels)  # compare at the highest level both ran, else each at its top
    top, naive_top = (max(common), max(common)) if common else (max(levels), max(naive_levels))
    ours, naive, one = row("batched", top), row("naive", naive_top), row("batched", min(levels))
    ratio_key = f"ours / naive at c={top}" if top == naive_top else f"ours at c={top} / naive at c={naive_top}"
    out = {
        f"ours req/s at c={top}": ours["throughput_per_s"],
        f"ours p99 ms at c={top}": ours["p99_ms"],
        f"naive req/s at c={naive_top}": naive["throughput_per_s"],
        ratio_key: ours["throughput_per_s"] / max(naive["throughput_per_s"], 1e-9),
        "best ours req/s / offline samples/s": max(r["throughput_per_s"] for r in results["batched"]["rows"])
        / results["offline"]["samples_per_s"],
        f"ours p50 ms at c={min(levels)}": one["p50_ms"],
        "ours server CPU % over the sweep": results["batched"]["server_cpu_pct"],
        "ours mean batch / mean batch ms": f"{results['batched']['mean_batch']:.1f} / "
                                           f"{results['batched']['mean_batch_ms']:.1f}",
        "naive mean batch ms": results["naive"]["mean_batch_ms"],
    }
    if "overload" in results:
        o = results["overload"]
        out.update({"overload goodput / capacity": o["goodput_over_capacity"],
                    "overload offered rate reached": o["row"]["offered_rate_reached"],
                    "overload admitted p99 ms": o["row"]["p99_ms"],
                    "overload admitted p99 / unloaded p99": o["admitted_p99_over_unloaded"],
                    "overload admitted p99 / p99 at capacity": o["admitted_p99_over_capacity_p99"],
                    "overload rejected fraction": o["rejected_frac"],
                    "overload refusal p99 ms": o["row"].get("refused_p99_ms", float("nan")),
                    "overload server alive": o["server_alive"],
                    "overload server RSS GiB before -> after":
                        f"{o['rss_before_gib']:.2f} -> {o['rss_after_gib']:.2f}"})
    return out


def peer_ratios(results: dict, naive_levels: list[int]) -> list[dict]:
    """One line per server (main batched first, then ours and LitServe on JSON bodies): p50 at the lowest
    level, req/s and p99 at the highest, and the ratios to the naive server (same level) and to offline
    throughput."""
    main = f"f{results['args']['frontends'] or 'auto'}" + ("+cg" if results["args"]["cuda_graphs"] else "")
    servers = [(f"batched {main}", results["batched"])] + list(results.get("peers", {}).items())
    lines = []
    for name, res in servers:
        levels = sorted(r["concurrency"] for r in res["rows"] if r["mode"] == "closed")
        low, top = closed_row(res["rows"], levels[0]), closed_row(res["rows"], levels[-1])
        naive = closed_row(results["naive"]["rows"], levels[-1]) if levels[-1] in naive_levels else None
        lines.append({"server": name, "low_c": levels[0], "p50_ms_low": low["p50_ms"], "top_c": levels[-1],
                      "req_per_s_top": top["throughput_per_s"], "p99_ms_top": top["p99_ms"],
                      "over_naive": top["throughput_per_s"] / max(naive["throughput_per_s"], 1e-9) if naive else None,
                      "over_offline": top["throughput_per_s"] / results["offline"]["samples_per_s"],
                      "mean_batch": res["mean_batch"], "mean_batch_ms": res["mean_batch_ms"],
                      "server_cpu_pct": res["server_cpu_pct"]})
    return lines


def format_peers(lines: list[dict]) -> str:
    head = (f"{'server':<14} {'p50 ms @low c':>14} {'req/s @top c':>13} {'p99 ms @top c':>14} "
            f"{'/ naive':>8} {'/ offline':>9} {'mean batch':>10} {'fwd ms':>7} {'srv cpu%':>9}")
    out = [head, "-" * len(head)]
    for v in lines:
        over_naive = f"{v['over_naive']:.1f}x" if v["over_naive"] is not None else "-"
        out.append(f"{v['server']:<14} {v['p50_ms_low']:>8.2f} c={v['low_c']:<3} {v['req_per_s_top']:>7.0f} "
                   f"c={v['top_c']:<3} {v['p99_ms_top']:>8.1f} c={v['top_c']:<3} {over_naive:>8} "
                   f"{v['over_offline']:>8.1%} {v['mean_batch']:>10.1f} {v['mean_batch_ms']:>7.1f} "
                   f"{v['server_cpu_pct']:>9.0f}")
    return "\n".join(out)


def format_summary(summary: dict) -> str:
    return "\n".join(f"{key:<44} {value:.3f}" if isinstance(value, float) else f"{key:<44} {value}"
                     for key, value in summary.items())
