"""Interleaved timing: every contender of a workload runs once per round, in turn,
so machine noise hits all of them alike. Reports median and min per call.
"""

import statistics
import time


def calls_per_sample(fn, target_seconds=0.002, limit=10_000):
    """How many calls make one sample last about ``target_seconds``."""
    fn()
    start = time.perf_counter()
    fn()
    once = time.perf_counter() - start
    if once <= 0:
        return limit
    return int(max(1, min(limit, target_seconds / once)))


def measure(contenders: dict, rounds=15, target_seconds=0.002):
    """``{name: fn}`` -> ``{name: (median_seconds, min_seconds)}`` per call, interleaved.

    >>> out = measure({"noop": lambda: None}, rounds=3)
    >>> sorted(out)
    ['noop']
    """
    loops = {name: calls_per_sample(fn, target_seconds) for name, fn in contenders.items()}
    samples: dict = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, fn in contenders.items():
            n = loops[name]
            start = time.perf_counter()
            for _ in range(n):
                fn()
            samples[name].append((time.perf_counter() - start) / n)
    return {name: (statistics.median(s), min(s)) for name, s in samples.items()}
