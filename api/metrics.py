"""Prometheus text exposition, by hand: a few counters, one histogram, the model version."""

from __future__ import annotations

import bisect
from collections import defaultdict

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Metrics:
    """Request counts and latencies per route, cache results, and the served model."""

    def __init__(self) -> None:
        self.requests: defaultdict[tuple[str, str, int], int] = defaultdict(int)
        self.buckets: defaultdict[str, list[int]] = defaultdict(lambda: [0] * (len(BUCKETS) + 1))
        self.sums: defaultdict[str, float] = defaultdict(float)
        self.cache: defaultdict[str, int] = defaultdict(int)
        self.strategy: defaultdict[str, int] = defaultdict(int)
        self.model_version = ""
        self.reloads = 0

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        self.requests[(route, method, status)] += 1
        self.buckets[route][bisect.bisect_left(BUCKETS, seconds)] += 1
        self.sums[route] += seconds

    def render(self) -> str:
        out = [
            "# HELP shoplake_api_requests_total HTTP requests by route, method and status.",
            "# TYPE shoplake_api_requests_total counter",
        ]
        for (route, method, status), n in sorted(self.requests.items()):
            out.append(
                f'shoplake_api_requests_total{{route="{route}",method="{method}",'
                f'status="{status}"}} {n}'
            )
        out += [
            "# HELP shoplake_api_request_duration_seconds Request latency by route.",
            "# TYPE shoplake_api_request_duration_seconds histogram",
        ]
        for route, counts in sorted(self.buckets.items()):
            total = 0
            for bound, n in zip((*BUCKETS, "+Inf"), counts, strict=True):
                total += n
                out.append(
                    f'shoplake_api_request_duration_seconds_bucket{{route="{route}",'
                    f'le="{bound}"}} {total}'
                )
            out.append(
                f'shoplake_api_request_duration_seconds_sum{{route="{route}"}} '
                f"{self.sums[route]:.6f}"
            )
            out.append(f'shoplake_api_request_duration_seconds_count{{route="{route}"}} {total}')
        out += [
            "# HELP shoplake_api_cache_total Recommendation cache look-ups by result.",
            "# TYPE shoplake_api_cache_total counter",
        ]
        out += [
            f'shoplake_api_cache_total{{result="{r}"}} {n}' for r, n in sorted(self.cache.items())
        ]
        out += [
            "# HELP shoplake_api_recommendations_total Answers by strategy.",
            "# TYPE shoplake_api_recommendations_total counter",
        ]
        out += [
            f'shoplake_api_recommendations_total{{strategy="{s}"}} {n}'
            for s, n in sorted(self.strategy.items())
        ]
        out += [
            "# HELP shoplake_model_info The served model version (value 1).",
            "# TYPE shoplake_model_info gauge",
            f'shoplake_model_info{{version="{self.model_version}"}} 1',
            "# HELP shoplake_model_reloads_total Model versions loaded.",
            "# TYPE shoplake_model_reloads_total counter",
            f"shoplake_model_reloads_total {self.reloads}",
        ]
        return "\n".join(out) + "\n"
