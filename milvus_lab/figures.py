"""Figures that show themselves in Jupyter without pyplot (no global figure registry, no leaks on re-run), and
the layout rules every lab plot and teaching view follows so that no text overlaps: notes in a strip the
layout engine keeps free under the axes (:func:`add_notes`), legends beside the axes (:func:`legend_outside`),
point labels placed where they touch no other label, marker or legend (:func:`place_labels`).
:func:`milvus_lab.lab.figure_check.layout_problems` checks the result."""

from __future__ import annotations

import io
import textwrap
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib.figure import Figure

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.legend import Legend
    from matplotlib.text import Text

#: font size (points) of the notes under a figure
NOTE_FONTSIZE = 8.0
#: where a point's label may go, as (dx, dy) directions tried in this order at growing distances (points)
_DIRECTIONS = ((1, 0.4), (1, -1), (-1, 0.4), (-1, -1), (0, 1), (0, -1.6), (1, 1), (-1, 1))
_DISTANCES = (3.0, 9.0, 18.0)


class NotebookFigure(Figure):
    """A matplotlib Figure that renders as PNG when it is the value of a notebook cell."""

    def _repr_png_(self) -> bytes:
        buffer = io.BytesIO()
        self.savefig(buffer, format="png", bbox_inches="tight")
        return buffer.getvalue()


def _measuring_renderer(fig: Figure) -> Any:
    from matplotlib.backends.backend_agg import RendererAgg

    return RendererAgg(int(np.ceil(fig.bbox.width)), int(np.ceil(fig.bbox.height)), fig.dpi)


def legend_outside(ax: Axes, **kwargs: Any) -> Legend:
    """``ax``'s legend to the right of its plotting area, top-aligned, where it can cover no data; the
    constrained layout engine narrows the axes to make room."""
    return ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, **kwargs)


def add_notes(fig: Figure, notes: Sequence[tuple[str, str]]) -> list[Text]:
    """Write ``notes`` (text, colour), in order, in a strip at the bottom of ``fig``. The figure grows by the
    strip's height and its constrained layout engine (set if it has another) lays every axes and label out
    above the strip, so a note can overlap nothing. Each note is wrapped to the figure's width. Calling it
    again on the same figure replaces the notes. Returns the Text artists (none for no notes)."""
    from matplotlib.layout_engine import ConstrainedLayoutEngine

    from .errors import ParamError

    if not isinstance(fig, Figure):
        raise ParamError(f"fig must be a matplotlib Figure; got {type(fig).__name__}")
    if isinstance(notes, str) or not all(isinstance(n, tuple) and len(n) == 2 for n in notes):
        raise ParamError(f"notes must be a list of (text, colour) pairs; got {notes!r:.80}")
    old = getattr(fig, "_lab_notes", None)
    if old is not None:
        for text in old["texts"]:
            text.remove()
        width, height = fig.get_size_inches()
        fig.set_size_inches(width, height - old["inches"])
        fig._lab_notes = None
    notes = [(str(text), color) for text, color in notes if str(text).strip()]
    if not notes:
        return []
    if not isinstance(fig.get_layout_engine(), ConstrainedLayoutEngine):
        fig.set_layout_engine("constrained")
    renderer = _measuring_renderer(fig)
    width_px = fig.bbox.width * 0.98
    chars = max(40, int(width_px * 72 / fig.dpi / (NOTE_FONTSIZE * 0.5)))
    texts: list[Text] = []
    heights: list[float] = []
    for note, color in notes:
        text = fig.text(0.01, 0.0, "", fontsize=NOTE_FONTSIZE, color=color, va="top", ha="left")
        for wrap in range(chars, 20, -4):  # the widest width that fits
            text.set_text(textwrap.fill(note, wrap))
            box = text.get_window_extent(renderer)
            if box.width <= width_px - 0.01 * fig.bbox.width:
                break
        texts.append(text)
        heights.append(box.height)
    gap = 0.25 * NOTE_FONTSIZE * fig.dpi / 72
    strip_px = sum(heights) + gap * (len(heights) + 1)
    width, height = fig.get_size_inches()
    extra = strip_px / fig.dpi
    fig.set_size_inches(width, height + extra)
    total_px = (height + extra) * fig.dpi
    fig.get_layout_engine().set(rect=(0.0, strip_px / total_px, 1.0, 1.0 - strip_px / total_px))
    top = strip_px - gap
    for text, h in zip(texts, heights):
        text.set_y(top / total_px)
        top -= h + gap
    fig._lab_notes = {"texts": texts, "inches": extra}
    return texts


def _boxes_overlap(box: np.ndarray, boxes: np.ndarray) -> bool:
    """Whether ``box`` (x0, y0, x1, y1) overlaps any row of ``boxes``."""
    if not len(boxes):
        return False
    return bool(((boxes[:, 0] < box[2]) & (boxes[:, 2] > box[0]) & (boxes[:, 1] < box[3])
                 & (boxes[:, 3] > box[1])).any())


def place_labels(ax: Axes, xs: Sequence[float], ys: Sequence[float], labels: Sequence[str], *,
                 colors: Sequence[Any] | Any = "0.3", fontsize: float | str = 7,
                 avoid: Sequence[tuple[Sequence[float], Sequence[float]]] = (), avoid_lines: bool = True,
                 leader: bool = True) -> int:
    """Label the points (``xs``, ``ys``) of ``ax`` (data coordinates), each beside its point where the label
    touches no text already in the axes, no point of ``avoid`` or of the labelled set, no drawn line (unless
    ``avoid_lines`` is False), no legend and no edge of the axes. The first place free is taken among a few
    directions at growing distances (a thin leader line joins a label set further off); a label with no free
    place is left out. Call it after the figure's layout is final (legends, titles, notes drawn), as it reads
    positions in pixels. Returns how many labels were left out."""
    from matplotlib.axes import Axes as MplAxes
    from matplotlib.text import Text

    from .errors import ParamError

    if not isinstance(ax, MplAxes):
        raise ParamError(f"ax must be a matplotlib Axes; got {type(ax).__name__}")
    if not len(xs) == len(ys) == len(labels):
        raise ParamError(f"xs, ys and labels must have one entry per point; got {len(xs)}, {len(ys)} and "
                         f"{len(labels)} entries")
    fig = ax.figure
    fig.draw_without_rendering()
    renderer = _measuring_renderer(fig)
    colors = list(colors) if isinstance(colors, (list, tuple)) and len(colors) == len(labels) else \
        [colors] * len(labels)
    to_px = ax.transData
    frame = ax.bbox
    pts = to_px.transform(np.column_stack([np.asarray(xs, float), np.asarray(ys, float)])) if len(xs) else \
        np.empty((0, 2))
    others = [to_px.transform(np.column_stack([np.asarray(x, float), np.asarray(y, float)])) for x, y in avoid]
    markers = np.vstack([pts, *others]) if others else pts
    markers = markers[np.isfinite(markers).all(axis=1)]
    r = 2.5 * fig.dpi / 72
    taken = [np.column_stack([markers - r, markers + r])]
    if avoid_lines:  # points every few pixels along each drawn line, so that no label crosses one
        for line in ax.get_lines():
            if line.get_visible() and line.get_linestyle() not in ("None", "none", "", " "):
                xy = line.get_transform().transform(np.asarray(line.get_xydata(), float))
                xy = xy[np.isfinite(xy).all(axis=1)]
                for a, b in zip(xy[:-1], xy[1:]):
                    along = a + (b - a) * np.linspace(0, 1, int(np.hypot(*(b - a)) // 3) + 2)[:, None]
                    taken.append(np.column_stack([along - 1, along + 1]))
    for text in ax.texts:  # labels written before, by this function or not
        if text.get_visible() and text.get_text().strip():
            b = Text.get_window_extent(text, renderer)
            taken.append(np.array([[b.x0, b.y0, b.x1, b.y1]]))
    for legend in [ax.get_legend(), *fig.legends]:
        if legend is not None:
            b = legend.get_window_extent(renderer)
            taken.append(np.array([[b.x0, b.y0, b.x1, b.y1]]))
    placed = np.vstack(taken)
    left_out = 0
    px_per_pt = fig.dpi / 72
    for x, y, (px, py), label, color in zip(xs, ys, pts, labels, colors):
        if not label or not np.isfinite([px, py]).all():
            continue
        if not (frame.x0 <= px <= frame.x1 and frame.y0 <= py <= frame.y1):
            continue  # outside the view: matplotlib draws no label there
        probe = Text(0, 0, label, fontsize=fontsize, ha="left", va="bottom")
        probe.set_figure(fig)
        size = probe.get_window_extent(renderer)
        w, h = size.width, size.height
        found = None
        for distance in _DISTANCES:
            for dx, dy in _DIRECTIONS:
                ox, oy = dx * distance * px_per_pt, dy * distance * px_per_pt
                x0 = px + ox if dx > 0 else px + ox - w if dx < 0 else px - w / 2
                y0 = py + oy if dy > 0 else py + oy - h if dy < 0 else py - h / 2
                box = np.array([x0, y0, x0 + w, y0 + h])
                inside = box[0] >= frame.x0 + 1 and box[2] <= frame.x1 - 1 and box[1] >= frame.y0 + 1 \
                    and box[3] <= frame.y1 - 1
                if inside and not _boxes_overlap(box, placed):
                    found = box
                    break
            if found is not None:
                break
        if found is None:
            left_out += 1
            continue
        far = distance > _DISTANCES[0]
        offset = ((found[0] - px) / px_per_pt, (found[1] - py) / px_per_pt)
        ax.annotate(label, (x, y), xytext=offset, textcoords="offset points",
                    ha="left", va="bottom", fontsize=fontsize, color=color,
                    arrowprops={"arrowstyle": "-", "color": color, "lw": 0.5, "alpha": 0.6, "shrinkA": 0,
                                "shrinkB": 2} if far and leader else None)
        placed = np.vstack([placed, found[None, :]])
    return left_out
