"""Bounded, downsampled metric history, so week-long runs keep memory flat."""

from __future__ import annotations

import math
from collections.abc import Sequence


class BoundedSeries:
    """``(x, y)`` points; past ``max_points`` neighbouring pairs are averaged (stride doubles).

    Memory is O(max_points) whatever the run length; the curve keeps its shape because each
    merge keeps the mean of the two points it replaces.
    """

    __slots__ = ("max_points", "xs", "ys", "_pending", "stride")

    def __init__(self, max_points: int = 2048):
        self.max_points = max(16, max_points)
        self.xs: list[float] = []
        self.ys: list[float] = []
        self._pending: list[tuple[float, float]] = []
        self.stride = 1

    def __len__(self) -> int:
        return len(self.xs) + (1 if self._pending else 0)

    def append(self, x: float, y: float) -> None:
        if y is None or not math.isfinite(y):
            return
        self._pending.append((x, y))
        if len(self._pending) < self.stride:
            return
        n = len(self._pending)
        self.xs.append(sum(p[0] for p in self._pending) / n)
        self.ys.append(sum(p[1] for p in self._pending) / n)
        self._pending.clear()
        if len(self.xs) > self.max_points:
            self._halve()

    def _halve(self) -> None:
        xs, ys = self.xs, self.ys
        m = len(xs) // 2 * 2
        nx = [(xs[i] + xs[i + 1]) / 2 for i in range(0, m, 2)]
        ny = [(ys[i] + ys[i + 1]) / 2 for i in range(0, m, 2)]
        if m < len(xs):
            nx.append(xs[-1])
            ny.append(ys[-1])
        self.xs, self.ys = nx, ny
        self.stride *= 2

    def points(self) -> tuple[list[float], list[float]]:
        """Every stored point, plus the partial bucket being filled (so the tip is live)."""
        xs, ys = list(self.xs), list(self.ys)
        if self._pending:
            n = len(self._pending)
            xs.append(sum(p[0] for p in self._pending) / n)
            ys.append(sum(p[1] for p in self._pending) / n)
        return xs, ys

    def clear(self) -> None:
        self.xs, self.ys, self._pending, self.stride = [], [], [], 1


def downsample(xs: Sequence[float], ys: Sequence[float], n: int) -> tuple[list[float], list[float]]:
    """At most ``n`` points: bucket means over equal index ranges (last point kept exactly)."""
    total = len(xs)
    if n <= 0 or total <= n:
        return list(xs), list(ys)
    out_x, out_y = [], []
    for b in range(n - 1):
        lo = b * (total - 1) // (n - 1)
        hi = max(lo + 1, (b + 1) * (total - 1) // (n - 1))
        out_x.append(sum(xs[lo:hi]) / (hi - lo))
        out_y.append(sum(ys[lo:hi]) / (hi - lo))
    out_x.append(xs[-1])
    out_y.append(ys[-1])
    return out_x, out_y
