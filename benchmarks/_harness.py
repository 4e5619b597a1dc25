"""Timing helpers shared by the benchmarks.

Benchmarks compare keras_reg with its peer *in the same process*: the candidates are run
interleaved (A B C, A B C, ...) for many rounds, each round timed per candidate, and the
reported figure is the median over rounds of the per-round ratio to the reference. A noisy,
shared machine slows every candidate of a round alike, so ratios stay meaningful when the
absolute times do not.
"""

import statistics
import time

import numpy as np


def time_once(fn, inner=1):
    """Seconds per call of `fn()` averaged over `inner` back-to-back calls."""
    start = time.perf_counter()
    for _ in range(inner):
        out = fn()
    _block(out)
    return (time.perf_counter() - start) / inner


def _block(out):
    """Forces asynchronous results to materialise (TF eager tensors are sync on CPU)."""
    if out is None:
        return
    for leaf in out if isinstance(out, (list, tuple)) else [out]:
        if hasattr(leaf, "numpy"):
            leaf.numpy()


def interleaved(candidates, rounds=15, inner=3, warmup=2):
    """Times several zero-argument callables interleaved.

    Args:
        candidates: dict name -> callable.
        rounds: how many interleaved rounds to time.
        inner: calls per timing (amortises timer overhead for fast functions).
        warmup: untimed calls per candidate first (tracing, compilation).

    Returns:
        dict name -> list of per-round seconds-per-call.
    """
    for fn in candidates.values():
        for _ in range(warmup):
            _block(fn())
    times = {name: [] for name in candidates}
    for _ in range(rounds):
        for name, fn in candidates.items():
            times[name].append(time_once(fn, inner))
    return times


def median_ratio(times, numerator, denominator):
    """Median over rounds of times[numerator][i] / times[denominator][i]."""
    return statistics.median(a / b for a, b in zip(times[numerator], times[denominator]))


def median(times, name):
    return statistics.median(times[name])


def memory_bandwidth(nbytes=256 * 2**20, repeats=7):
    """Measured copy bandwidth of this machine in bytes/s (read + write counted).

    Used to express each kernel as a multiple of its memory-traffic bound.
    """
    src = np.ones(nbytes // 8, dtype=np.float64)
    dst = np.empty_like(src)
    best = []
    for _ in range(repeats):
        start = time.perf_counter()
        np.copyto(dst, src)
        best.append(time.perf_counter() - start)
    return 2 * nbytes / statistics.median(best)


def markdown_table(header, rows):
    """Renders rows (lists of cells) as a Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
