"""`python -m bench [name ...]`: run the benchmarks one after another; each measures one
performance target as a ratio to a baseline measured in the same run (timing is never tested).

Each benchmark is a module `bench.<name>` exposing `async def main() -> None`; with no names,
every one that exists runs in the order below. SIGTERM stops the run the way Ctrl-C does: the
benchmark is cancelled, so the servers and processes it started are stopped on the way out.
"""

from __future__ import annotations

import asyncio
import importlib
import signal
import sys
from collections.abc import Callable, Coroutine
from typing import Any, cast

BENCHMARKS = (
    "progress",
    "admission",
    "orchestration",
    "gateway",
    "tracing",
    "sse",
    "burst",
    "twin",
    "waiting",
    "reconcile",
)

Main = Callable[[], Coroutine[Any, Any, None]]


def load(name: str) -> Main | None:
    """The benchmark's `main`, or None when the module does not exist (yet)."""
    try:
        module = importlib.import_module(f"bench.{name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"bench.{name}":
            return None
        raise
    return cast(Main, module.main)


def run(names: list[str]) -> int:
    unknown = [name for name in names if name not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark(s) {unknown}; known: {', '.join(BENCHMARKS)}", file=sys.stderr)
        return 2
    missing = []
    for name in names or BENCHMARKS:
        main = load(name)
        if main is None:
            print(f"== {name}: not present (bench/{name}.py), skipped", flush=True)
            missing.append(name)
            continue
        print(f"== {name}", flush=True)
        if not asyncio.run(cancellable(main)):
            print(f"== {name}: stopped by SIGTERM", flush=True)
            return 128 + signal.SIGTERM
    return 1 if names and missing else 0  # a benchmark asked for by name must exist


async def cancellable(main: Main) -> bool:
    """Run `main`; False when SIGTERM cancelled it (its clean-up has run by then)."""
    task = asyncio.ensure_future(main())
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        await task
    except asyncio.CancelledError:
        if not task.cancelled():
            raise
        return False
    finally:
        loop.remove_signal_handler(signal.SIGTERM)
    return True


if __name__ == "__main__":
    raise SystemExit(run(sys.argv[1:]))
