"""`python -m bench.tracing`: what tracing costs.

The gateway start benchmark (start p50 and p95 at `BENCH_CLIENTS` clients, default 20, each
making `BENCH_PER_CLIENT` starts, default 5, after a warm-up step) and the orchestration benchmark
(runs/s of `BENCH_RUNS` concurrent runs of our workflow with zero-length stages, default 20, after
a warm-up round), each with tracing off and on, `BENCH_TRACING_REPEATS` (default 3) interleaved
repeats: off, on, off, on, off, on. Each repeat is a process of its own (`bench.traced`) on a
fresh stack, since a process installs its tracer provider once. "On" keeps every span in memory
behind the batch processor, as an exporter would take them.

For each figure it prints the repeats and whether the traced median is within 10 % of the
untraced median, or else within the spread of the untraced repeats. Next to the latencies and
the rate it reports the CPU time our processes spent per start or run, which other load on a
shared machine disturbs far less.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
from dataclasses import dataclass

REPEATS = int(os.environ.get("BENCH_TRACING_REPEATS", "3"))
CHILD_DEFAULTS = {"BENCH_CLIENTS": "20", "BENCH_PER_CLIENT": "5", "BENCH_RUNS": "20"}
MODES = ("off", "on")


@dataclass(frozen=True)
class Figure:
    key: str
    label: str
    unit: str
    higher_is_better: bool = False


FIGURES = {
    "gateway": (
        Figure("p50", "gateway start p50", "ms"),
        Figure("p95", "gateway start p95", "ms"),
        Figure("cpu", "CPU per start (API, workers, load)", "ms"),
    ),
    "orchestration": (
        Figure("rate", "orchestration throughput", "runs/s", True),
        Figure("cpu", "CPU per run (workers, client)", "ms"),
    ),
}


async def repeat(kind: str, mode: str) -> dict[str, float]:
    """One repeat in its own process; its figures are the last JSON line it prints."""
    proc = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "bench.traced", kind, mode),
        env={**CHILD_DEFAULTS, **os.environ},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    out, _ = await proc.communicate()
    lines = [line for line in out.decode().splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"bench.traced {kind} {mode} failed with exit code {proc.returncode}")
    figures: dict[str, float] = json.loads(lines[-1])
    if (figures["spans"] > 0) != (mode == "on"):
        raise RuntimeError(f"bench.traced {kind} {mode} recorded {figures['spans']} spans")
    return figures


def verdict(figure: Figure, off: list[float], on: list[float]) -> str:
    """Within 10 % means |traced / untraced - 1| <= 0.10 on the medians; the spread is the
    untraced repeats' lowest to highest."""
    off_median, on_median = statistics.median(off), statistics.median(on)
    ratio = on_median / off_median if off_median else float("inf")
    worse = ratio < 1 if figure.higher_is_better else ratio > 1
    if abs(ratio - 1) <= 0.10:
        answer = "traced median within 10 % of the untraced median"
    elif min(off) <= on_median <= max(off):
        answer = "traced median within the spread of the untraced repeats"
    else:
        answer = f"traced median {'worse' if worse else 'better'} than every untraced repeat"
    shown = " ".join(f"{value:.1f}" for value in off), " ".join(f"{value:.1f}" for value in on)
    return (
        f"  {figure.label} ({figure.unit}): off [{shown[0]}] on [{shown[1]}]; medians "
        f"{off_median:.1f} / {on_median:.1f} = {ratio:.2f}x: {answer}"
    )


async def measure(kind: str) -> None:
    results: dict[str, list[dict[str, float]]] = {mode: [] for mode in MODES}
    for number in range(REPEATS):
        for mode in MODES:
            figures = await repeat(kind, mode)
            results[mode].append(figures)
            shown = " ".join(f"{f.key}={figures[f.key]:.1f} {f.unit}" for f in FIGURES[kind])
            spans = int(figures["spans"])
            print(f"  {kind} repeat {number + 1} {mode:<3} {shown} ({spans} spans)", flush=True)
    for figure in FIGURES[kind]:
        off = [r[figure.key] for r in results["off"]]
        on = [r[figure.key] for r in results["on"]]
        print(verdict(figure, off, on), flush=True)


async def main() -> None:
    print(
        f"tracing benchmark: {REPEATS} interleaved repeats (off, on) of the gateway start and "
        "the orchestration benchmarks, each in its own process on a fresh dev server",
        flush=True,
    )
    for kind in FIGURES:
        await measure(kind)


if __name__ == "__main__":
    asyncio.run(main())
