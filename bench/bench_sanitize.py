"""How long sanitising one comment takes (it runs on every post and edit).

    python bench/bench_sanitize.py

Prints the median and 99th percentile over many runs of a 300-character comment with links
and markup, and of a 5,000-character one.
"""

from __future__ import annotations

import statistics
import time

from comments.sanitize import sanitize

SHORT = (
    "Great piece! <b>But</b> see https://example.com/report-2024.pdf, page 3 < 5.\n"
    "I think the <i>numbers</i> are off.\n\nAlso www.example.org/data (table 2). "
) * 3


def measure(body: str, runs: int) -> tuple[float, float]:
    sanitize(body)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        sanitize(body)
        times.append(time.perf_counter() - start)
    times.sort()
    return statistics.median(times) * 1e6, times[int(len(times) * 0.99)] * 1e6


def main() -> None:
    for name, body, runs in (("300 chars", SHORT[:300], 5000), ("5000 chars", (SHORT * 20)[:5000],
                                                                 1000)):
        p50, p99 = measure(body, runs)
        print(f"sanitize {name:>10}: median {p50:7.1f} us   p99 {p99:7.1f} us   ({runs} runs)")


if __name__ == "__main__":
    main()
