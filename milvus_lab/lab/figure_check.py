"""A layout check for any matplotlib Figure: text that overlaps text, a legend over plotted data, text cut
off at the figure's edge. The lab's and the views' tests run it on every figure they draw; a new plot
calls :func:`layout_problems` (or :func:`assert_clean_layout`) on its figure the same way.

The figure is drawn once with a renderer that records every piece of text matplotlib actually draws (a
tick label outside the view, an empty string or a hidden title is not text on the page), so the boxes
compared are the ones a reader sees, after the layout engine has run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ParamError

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from matplotlib.text import Text
    from matplotlib.transforms import Bbox

#: problem kinds, in the order they are reported
TEXT_OVERLAP = "text overlap"
LEGEND_OVER_DATA = "legend over data"
OUTSIDE_FIGURE = "outside the figure"


@dataclass(frozen=True)
class LayoutProblem:
    """One defect of a figure's layout: its kind (:data:`TEXT_OVERLAP`, :data:`LEGEND_OVER_DATA`,
    :data:`OUTSIDE_FIGURE`) and a sentence naming the artists involved."""

    kind: str
    detail: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.detail}"


def _recording_renderer(fig: Figure) -> Any:
    """An Agg renderer of ``fig``'s size that remembers the Text artists whose lines it draws."""
    from matplotlib.backends.backend_agg import RendererAgg

    class Recorder(RendererAgg):
        def __init__(self, width: float, height: float, dpi: float) -> None:
            super().__init__(width, height, dpi)
            self.drawn: dict[int, Text] = {}
            self.lines: set[str] = set()

        def draw_text(self, gc: Any, x: float, y: float, s: str, prop: Any, angle: float, ismath: Any = False,
                      mtext: Text | None = None) -> None:
            # matplotlib names the artist only for a one-line text; the lines of a longer one are kept
            if mtext is not None and s.strip():
                self.drawn.setdefault(id(mtext), mtext)
            elif mtext is None:
                self.lines.add(s)
            super().draw_text(gc, x, y, s, prop, angle, ismath, mtext)

    return Recorder(int(np.ceil(fig.bbox.width)), int(np.ceil(fig.bbox.height)), fig.dpi)


def _name(text: Text) -> str:
    words = " ".join(text.get_text().split())
    return repr(words if len(words) <= 60 else words[:57] + "...")


def _overlap(a: Bbox, b: Bbox, tolerance: float) -> bool:
    return (min(a.x1, b.x1) - max(a.x0, b.x0) > tolerance) and (min(a.y1, b.y1) - max(a.y0, b.y0) > tolerance)


def _marks(ax: Any) -> tuple[list[tuple[str, np.ndarray, np.ndarray]], list[tuple[str, np.ndarray]]]:
    """The plotted data of ``ax`` in display pixels: (label, points (n, 2), marker radii (n,)) and
    (label, segments (m, 2, 2)) for lines, scatter points, line and polygon collections, bars and patches."""
    from matplotlib.collections import PathCollection

    points: list[tuple[str, np.ndarray, np.ndarray]] = []
    segments: list[tuple[str, np.ndarray]] = []
    px_per_pt = ax.figure.dpi / 72.0

    def add_path(label: str, xy: np.ndarray, closed: bool = False) -> None:
        xy = xy[np.isfinite(xy).all(axis=1)]
        if len(xy) >= 2:
            if closed:
                xy = np.vstack([xy, xy[:1]])
            segments.append((label, np.stack([xy[:-1], xy[1:]], axis=1)))
        elif len(xy) == 1:
            points.append((label, xy, np.zeros(1)))

    for line in ax.get_lines():
        if not line.get_visible():
            continue
        xy = line.get_transform().transform(np.asarray(line.get_xydata(), float))
        label = f"line {line.get_label()!r}"
        if line.get_marker() not in (None, "None", "none", "", " "):
            finite = xy[np.isfinite(xy).all(axis=1)]
            points.append((label, finite, np.full(len(finite), line.get_markersize() * px_per_pt / 2)))
        if line.get_linestyle() not in ("None", "none", "", " "):
            add_path(label, xy)
    for coll in ax.collections:
        if not coll.get_visible():
            continue
        label = f"{type(coll).__name__} {coll.get_label()!r}"
        if isinstance(coll, PathCollection):
            offsets = np.asarray(coll.get_offsets(), float)
            if not len(offsets):
                continue
            xy = coll.get_offset_transform().transform(offsets)
            sizes = np.asarray(coll.get_sizes(), float)
            radii = np.sqrt(np.resize(sizes if len(sizes) else [0.0], len(xy))) * px_per_pt / 2
            keep = np.isfinite(xy).all(axis=1)
            points.append((label, xy[keep], radii[keep]))
        else:
            transform = coll.get_transform()
            for path in coll.get_paths():
                add_path(label, transform.transform(path.vertices), closed=bool(path.codes is not None
                                                                                  and 79 in path.codes))
    for patch in ax.patches:
        if patch.get_visible():
            add_path(f"{type(patch).__name__} {patch.get_label()!r}",
                     patch.get_transform().transform(patch.get_path().vertices), closed=True)
    return points, segments


def _segments_hit(seg: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    """Which segments (m, 2, 2) cross the rectangle (x0, y0, x1, y1) (Liang-Barsky clipping)."""
    x0, y0, x1, y1 = box
    p, q = seg[:, 0], seg[:, 1] - seg[:, 0]
    lo, hi = np.zeros(len(seg)), np.ones(len(seg))
    ok = np.ones(len(seg), bool)
    with np.errstate(divide="ignore", invalid="ignore"):
        for d, start, low, high in ((q[:, 0], p[:, 0], x0, x1), (q[:, 1], p[:, 1], y0, y1)):
            flat = d == 0
            ok &= ~flat | ((start >= low) & (start <= high))
            t1, t2 = (low - start) / d, (high - start) / d
            tmin, tmax = np.minimum(t1, t2), np.maximum(t1, t2)
            lo = np.where(flat, lo, np.maximum(lo, tmin))
            hi = np.where(flat, hi, np.minimum(hi, tmax))
    return ok & (lo <= hi)


def layout_problems(fig: Figure, *, tolerance: float = 1.0) -> list[LayoutProblem]:
    """Every layout defect of ``fig`` once drawn (its layout engine runs first):

    - two drawn texts whose boxes overlap by more than ``tolerance`` pixels in both directions (titles,
      axis and tick labels, annotations, legend entries, notes written with ``fig.text``), or a text under a
      legend it does not belong to;
    - a legend (of an axes or of the figure) over a plotted point (marker, scatter point), a line or
      polygon edge, or a bar, inside any axes of the figure;
    - a text that reaches past the figure's edge.

    Returns an empty list for a clean figure. ``fig`` is drawn, not changed."""
    from matplotlib.figure import Figure as MplFigure

    if not isinstance(fig, MplFigure):
        raise ParamError(f"fig must be a matplotlib Figure; got {type(fig).__name__}")
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or not 0 <= tolerance < 100:
        raise ParamError(f"tolerance must be a number of pixels in [0, 100); got {tolerance!r}")
    from matplotlib.text import Text as MplText

    renderer = _recording_renderer(fig)
    fig.draw(renderer)
    texts = list(renderer.drawn.values())
    for text in fig.findobj(MplText):  # a text of several lines is drawn when each of its lines was
        lines = [line for line in text.get_text().split("\n") if line.strip()]
        if len(lines) > 1 and id(text) not in renderer.drawn and set(lines) <= renderer.lines:
            texts.append(text)
    boxes = [MplText.get_window_extent(t, renderer) for t in texts]  # an annotation's text, not its arrow
    problems: list[LayoutProblem] = []

    legends = [ax.get_legend() for ax in fig.get_axes() if ax.get_legend() is not None] + list(fig.legends)
    legends = [leg for leg in legends if leg.get_visible()]
    owner = {id(t): i for i, leg in enumerate(legends) for t in [*leg.get_texts(), leg.get_title()]}
    legend_boxes = [leg.get_window_extent(renderer) for leg in legends]

    for i in range(len(texts)):
        for j in range(i + 1, len(texts)):
            if _overlap(boxes[i], boxes[j], tolerance):
                problems.append(LayoutProblem(TEXT_OVERLAP, f"{_name(texts[i])} overlaps {_name(texts[j])}"))
    for i, (leg, box) in enumerate(zip(legends, legend_boxes)):
        for text, tbox in zip(texts, boxes):
            if owner.get(id(text)) != i and _overlap(box, tbox, tolerance):
                problems.append(LayoutProblem(TEXT_OVERLAP, f"{_name(text)} lies under the legend "
                                                            f"{_name(leg.get_title())}"))

    for leg, box in zip(legends, legend_boxes):
        for ax in fig.get_axes():
            a = ax.bbox
            rect = (max(box.x0, a.x0), max(box.y0, a.y0), min(box.x1, a.x1), min(box.y1, a.y1))
            if rect[0] >= rect[2] or rect[1] >= rect[3]:
                continue
            points, segments = _marks(ax)
            hits = []
            for label, xy, radius in points:
                inside = ((xy[:, 0] + radius >= rect[0]) & (xy[:, 0] - radius <= rect[2])
                          & (xy[:, 1] + radius >= rect[1]) & (xy[:, 1] - radius <= rect[3]))
                if inside.any():
                    hits.append(f"{int(inside.sum())} point(s) of {label}")
            for label, seg in segments:
                crossed = _segments_hit(seg, rect)
                if crossed.any():
                    hits.append(f"{int(crossed.sum())} segment(s) of {label}")
            if hits:
                title = _name(leg.get_title()) if leg.get_title().get_text() else "without a title"
                problems.append(LayoutProblem(LEGEND_OVER_DATA, f"the legend {title} covers "
                                                                f"{', '.join(hits)} in axes {_name(ax.title)}"))

    page = fig.bbox
    for text, box in zip(texts, boxes):
        if (box.x0 < page.x0 - tolerance or box.y0 < page.y0 - tolerance or box.x1 > page.x1 + tolerance
                or box.y1 > page.y1 + tolerance):
            problems.append(LayoutProblem(OUTSIDE_FIGURE, f"{_name(text)} reaches past the figure's edge"))
    return problems


def assert_clean_layout(fig: Figure, *, tolerance: float = 1.0) -> None:
    """Raise AssertionError listing every :func:`layout_problems` of ``fig``; return None when there is none."""
    problems = layout_problems(fig, tolerance=tolerance)
    if problems:
        raise AssertionError(f"{len(problems)} layout problem(s):\n" + "\n".join(f"- {p}" for p in problems))
