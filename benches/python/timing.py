"""Timing shared by the Python peers of mudar's benchmarks."""

import time


def best(fn, repeats):
    """The best wall time of `repeats` calls of `fn`, in seconds."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)
