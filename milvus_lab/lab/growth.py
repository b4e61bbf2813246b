"""Growth laws fitted to measurements at several sample sizes, with prediction intervals that widen with the
extrapolation.

Two laws, each a straight line after a change of variables, fitted by least squares:

* ``linear``: ``y = a + b·n`` (index memory: bytes per row plus a fixed part; an IVF query's time against the
  vectors it scans, through :class:`OnWork`);
* ``power``: ``y = a·n^b``, fitted as ``ln y = ln a + b·ln n`` (build time, QPS, latency, a search parameter).

The prediction interval at ``n`` is the textbook one for a new observation of a straight-line fit,
``t(df) · σ · sqrt(1 + 1/m + (x - x̄)² / Sxx)`` with ``m`` points and ``df = m - 2``, so it widens as ``n``
moves away from the sizes measured. ``σ`` is the larger of the fit's residual spread and the measurements'
own spread (the rounds of an interleaved timing), so a fit through few points that happen to line up does not
claim more precision than one measurement has.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import ParamError

LAWS = ("linear", "power")
#: two-sided level of every interval the forecast prints
LEVEL = 0.95
#: how far beyond the largest sample each figure is forecast at most (the search need and recall move with
#: the data's structure; timings with the machine's caches; memory is a count of structures)
MAX_FACTOR = {"search": 64.0, "timing": 100.0, "memory": 10_000.0}


@functools.lru_cache(maxsize=256)
def t_quantile(p: float, df: int) -> float:
    """The ``p`` quantile of Student's t with ``df`` degrees of freedom (p in (0.5, 1)), by bisection on its CDF
    (Simpson's rule on the density; accurate to about 1e-7, deterministic)."""
    if not 0.5 < p < 1 or df < 1:
        raise ParamError(f"t_quantile needs 0.5 < p < 1 and df >= 1; got p={p}, df={df}")
    log_norm = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)

    def cdf(x: float, steps: int = 4000) -> float:
        grid = np.linspace(0.0, x, steps + 1)
        dens = np.exp(log_norm - (df + 1) / 2 * np.log1p(grid * grid / df))
        weights = np.ones(steps + 1)
        weights[1:-1:2], weights[2:-1:2] = 4, 2
        return 0.5 + float(dens @ weights) * (x / steps) / 3

    low, high = 0.0, 1.0
    while cdf(high) < p:
        low, high = high, high * 2
    for _ in range(60):
        mid = (low + high) / 2
        low, high = (mid, high) if cdf(mid) < p else (low, mid)
    return (low + high) / 2


@dataclass(frozen=True)
class Prediction:
    """A forecast value and its interval (``lo`` <= ``value`` <= ``hi``); NaN where no number is supported."""

    value: float
    lo: float
    hi: float

    @staticmethod
    def none() -> Prediction:
        return Prediction(math.nan, math.nan, math.nan)


@dataclass(frozen=True)
class Fit:
    """A straight-line fit of one figure against the number of rows (see the module docstring)."""

    law: str
    intercept: float
    slope: float
    sigma: float
    x_mean: float
    sxx: float
    points: int
    rows_min: int
    rows_max: int

    @property
    def df(self) -> int:
        return self.points - 2

    def _x(self, rows: float) -> float:
        return math.log(rows) if self.law == "power" else float(rows)

    def _back(self, y: float) -> float:
        return math.exp(min(y, 700.0)) if self.law == "power" else y  # 700: below float's overflow

    def predict(self, rows: float, level: float = LEVEL) -> Prediction:
        """The fitted value at ``rows`` and its ``level`` prediction interval."""
        x = self._x(rows)
        centre = self.intercept + self.slope * x
        if self.df < 1:
            return Prediction(self._back(centre), math.nan, math.nan)
        spread = self.sigma * math.sqrt(1 + 1 / self.points + (x - self.x_mean) ** 2 / self.sxx)
        half = t_quantile(0.5 + level / 2, self.df) * spread
        return Prediction(self._back(centre), self._back(centre - half), self._back(centre + half))

    def curve(self, rows: Sequence[float], level: float = LEVEL) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Fitted values and interval bounds at each of ``rows`` (for plots)."""
        preds = [self.predict(r, level) for r in rows]
        return (np.array([p.value for p in preds]), np.array([p.lo for p in preds]),
                np.array([p.hi for p in preds]))

    def describe(self, unit: str = "") -> str:
        """The law as a formula: ``y = 0.0123 + 2.1e-05·n`` or ``y = 3.4·n^0.52``."""
        unit = f" {unit}" if unit else ""
        if self.law == "power":
            return f"{math.exp(self.intercept):.4g}{unit} x rows^{self.slope:.3f}"
        return f"{self.intercept:.4g}{unit} + {self.slope:.4g}{unit} x rows"


def fit(rows: Sequence[float], values: Sequence[float], law: str, *, spread: Sequence[float] | None = None,
        floor: float = 0.0) -> Fit:
    """Fit ``values`` measured at ``rows`` with ``law``.

    ``spread``: each measurement's own standard deviation, in the fit's scale (log scale for ``power``: the
    relative spread); ``floor``: the smallest σ allowed (e.g. a machine's known timing noise). Needs at least
    two distinct sizes; positive values for ``power``."""
    if law not in LAWS:
        raise ParamError(f"law must be one of {', '.join(LAWS)}; got {law!r}")
    n = np.asarray(rows, dtype=np.float64)
    y = np.asarray(values, dtype=np.float64)
    ok = np.isfinite(n) & np.isfinite(y) & (n > 0)
    if law == "power":
        ok &= y > 0
    n, y = n[ok], y[ok]
    if len(np.unique(n)) < 2:
        raise ParamError(f"a {law} fit needs values at two or more distinct sizes; got {len(np.unique(n))}")
    x = np.log(n) if law == "power" else n
    yy = np.log(y) if law == "power" else y
    x_mean = float(x.mean())
    sxx = float(((x - x_mean) ** 2).sum())
    slope = float(((x - x_mean) * (yy - yy.mean())).sum() / sxx)
    intercept = float(yy.mean() - slope * x_mean)
    residual = yy - (intercept + slope * x)
    dof = len(x) - 2
    sigma_fit = float(math.sqrt((residual ** 2).sum() / dof)) if dof > 0 else 0.0
    sigma_meas = 0.0
    if spread is not None:
        s = np.asarray(spread, dtype=np.float64)[ok]
        s = s[np.isfinite(s)]
        sigma_meas = float(math.sqrt((s ** 2).mean())) if len(s) else 0.0
    sigma = max(sigma_fit, sigma_meas, floor)
    return Fit(law, intercept, slope, sigma, x_mean, sxx, len(x), int(n.min()), int(n.max()))


@dataclass(frozen=True)
class OnWork:
    """A law fitted against the work one query does (e.g. the vectors an IVF search scans: nprobe x rows / nlist
    + nlist) rather than against rows, read at a number of rows through ``work``: the work the forecast setting
    implies at that size. Same interface as :class:`Fit` (``predict``, ``curve``, ``describe``).

    ``positive``: the fitted figure is a time, which cannot be 0 or below: its interval is taken as a factor
    either side of the centre (the upper end is the straight line's, ``centre + half``; the lower end divides
    the centre by the same factor, ``centre / (1 + half / centre)``), so it stays above 0 however far the
    extrapolation reaches. ``reciprocal``: the fitted time is that of one query for a rate such as QPS, read
    back as ``1 / time`` (the interval's ends swap)."""

    fit: Fit
    work: Callable[[float], float]
    label: str
    rows_min: int
    rows_max: int
    reciprocal: bool = False
    positive: bool = False

    @property
    def law(self) -> str:
        return self.fit.law

    @property
    def points(self) -> int:
        return self.fit.points

    def predict(self, rows: float, level: float = LEVEL) -> Prediction:
        p = self.fit.predict(self.work(rows), level)
        if self.positive and p.value > 0 and p.hi == p.hi:
            p = Prediction(p.value, p.value * p.value / p.hi, p.hi)  # centre / (1 + half / centre)
        if not self.reciprocal:
            return p

        def inverse(t: float) -> float:
            return 1.0 / t if t > 0 else math.nan

        return Prediction(inverse(p.value), inverse(p.hi), inverse(p.lo))

    def curve(self, rows: Sequence[float], level: float = LEVEL) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        preds = [self.predict(r, level) for r in rows]
        return (np.array([p.value for p in preds]), np.array([p.lo for p in preds]),
                np.array([p.hi for p in preds]))

    def describe(self, unit: str = "") -> str:
        text = self.fit.describe().replace("rows", self.label)
        return f"1 / ({text}){' ' + unit if unit else ''}" if self.reciprocal else self.fit.describe(unit).replace(
            "rows", self.label)
