"""Figures of specialisation results: learning curves, order parameters, diagrams.

Every function draws with matplotlib, returns the :class:`~matplotlib.figure.Figure`
and writes it to ``path`` when one is given (the format follows the file
suffix, e.g. ``.png``, ``.pdf`` or ``.svg``).

Line styles encode the state of each point of a branch:

* solid: the equilibrium state, the global minimum of the free energy F;
* dashed: metastable, a local minimum of F inside the ansatz that is not global;
* dotted: unstable, a saddle of F (``n_unstable > 0``).

A branch is drawn as runs of equal style (:func:`stability_runs`). Two
neighbouring runs meet at the critical point where the style changes (a fold,
branch point or first-order point on that branch) when the result lists one
there. Otherwise they meet halfway between the last point of one run and the
first point of the next. Critical points that lie close together, as the
fold, first-order point and branch point of a weakly first-order transition
do, are shown again in an inset with a linear alpha axis.

When no display is available (Linux without ``DISPLAY`` or
``WAYLAND_DISPLAY``) and pyplot has not been imported yet, new figures use
the non-interactive Agg backend, unless ``MPLBACKEND`` chooses another one.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
from collections.abc import Sequence
from itertools import pairwise

import matplotlib
import numpy as np
from matplotlib.font_manager import FontProperties
from matplotlib.lines import Line2D
from matplotlib.textpath import TextToPath
from matplotlib.ticker import (
    FuncFormatter,
    Locator,
    LogLocator,
    MaxNLocator,
    NullFormatter,
)

__all__ = [
    "ACTIVATION_COLORS",
    "BRANCH_COLORS",
    "CURVE_COLORS",
    "MARKERS",
    "STABILITY_STYLES",
    "plot_critical_curves",
    "plot_learning_curve",
    "plot_order_parameters",
    "plot_phase_diagram",
    "stability_runs",
]

logger = logging.getLogger(__name__)

#: Line style of each stability class.
STABILITY_STYLES = {"equilibrium": "-", "metastable": "--", "unstable": ":"}

_STABILITY_LABELS = {
    "equilibrium": "equilibrium (global minimum)",
    "metastable": "metastable (local minimum)",
    "unstable": "unstable (saddle)",
}

#: Colour of each branch kind. Further branches of a kind (``" #2"``) and
#: other names take the colours of ``_EXTRA_COLORS`` in turn.
BRANCH_COLORS = {
    "unspecialized": "tab:blue",
    "specialized R>S": "tab:orange",
    "specialized R<S": "tab:green",
}

_EXTRA_COLORS = ("tab:purple", "tab:brown", "tab:pink", "tab:olive", "tab:cyan")

#: Marker of each critical-point kind.
MARKERS = {
    "branch_point": "o",
    "fold": "v",
    "first_order": "s",
    "symmetry_breaking": "x",
}

_KIND_LABELS = {
    "branch_point": "branch point",
    "fold": "fold (spinodal)",
    "symmetry_breaking": "symmetry breaking (full space)",
    "first_order": "first-order point (equal F)",
}

# Vertical lines of equilibrium transitions are dash-dotted, a style that no
# branch uses; the colour and the annotation tell the two kinds apart.
_TRANSITION_STYLES = {
    "continuous": {"color": "tab:gray", "linestyle": "-."},
    "first_order": {"color": "black", "linestyle": "-."},
}

_TRANSITION_LABELS = {
    "continuous": "continuous transition",
    "first_order": "first-order transition",
}

#: Colour of each activation in phase diagrams. Other names take the colours
#: of ``_EXTRA_COLORS`` in turn.
ACTIVATION_COLORS = {"relu": "tab:red", "erf": "tab:blue"}

_ORDER_PARAMETERS = (
    ("R", "$R$ (student unit $k$ with teacher unit $k$)"),
    ("S", "$S$ (student unit with another teacher unit)"),
    ("C", "$C$ (student unit with another student unit)"),
)


# -- figures and backend ---------------------------------------------------------------
def _has_display() -> bool:
    if not sys.platform.startswith("linux"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _pyplot():
    """Import pyplot, choosing the Agg backend first when there is no display."""
    if (
        "matplotlib.pyplot" not in sys.modules
        and not os.environ.get("MPLBACKEND")
        and not _has_display()
    ):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _finish(fig, path):
    if path is not None:
        fig.savefig(path, dpi=150, bbox_inches="tight")
        logger.info("wrote figure %s", path)
    return fig


# -- colours and stability -------------------------------------------------------------
def _branch_colors(names: Sequence[str]) -> dict:
    colors, extra = {}, iter(_EXTRA_COLORS * (1 + len(names)))
    for name in names:
        colors[name] = BRANCH_COLORS.get(name) or next(extra)
    return colors


def _stability_classes(branch) -> np.ndarray:
    """Return ``"equilibrium"``, ``"metastable"`` or ``"unstable"`` per point."""
    stable = np.asarray(branch.stable, dtype=bool)
    equilibrium = np.asarray(branch.equilibrium, dtype=bool)
    classes = np.full(len(stable), "metastable", dtype=object)
    classes[equilibrium] = "equilibrium"
    classes[~stable] = "unstable"
    return classes


def _coordinates(alpha, R, S, C) -> np.ndarray:
    return np.array([np.log(alpha), R, S, C], dtype=float)


def _junctions(branch, i, critical_points, keys):
    """Return the points where the style changes between points ``i`` and ``i + 1``.

    Distances are measured in the coordinates (log alpha, R, S, C). A
    critical point of this branch qualifies when it lies within the ellipse
    through both points whose major axis is 1.5 times their distance, and
    when it projects onto the segment between them. The qualifying points are
    returned as ``(kind, values)`` in their order along the segment. Without
    one, the midpoint is returned with kind ``None``.
    """
    before = _coordinates(branch.alpha[i], branch.R[i], branch.S[i], branch.C[i])
    after = _coordinates(
        branch.alpha[i + 1], branch.R[i + 1], branch.S[i + 1], branch.C[i + 1]
    )
    chord = after - before
    length = float(np.linalg.norm(chord))
    found = []
    for point in critical_points:
        state = point.states.get(branch.name)
        if state is None or not point.alpha > 0:
            continue
        candidate = _coordinates(point.alpha, state["R"], state["S"], state["C"])
        spread = np.linalg.norm(candidate - before) + np.linalg.norm(candidate - after)
        if spread > 1.5 * length + 1e-14:
            continue
        # Position of the point's projection along the segment, 0 at point i.
        # A point that projects outside the segment belongs to a neighbouring
        # interval, such as the fold just before the first point past it.
        position = float((candidate - before) @ chord) / max(length**2, 1e-300)
        if not 0.0 <= position <= 1.0:
            continue
        values = {"alpha": point.alpha, **state}
        found.append((position, point.kind, {key: values[key] for key in keys}))
    if not found:
        midpoint = {
            key: 0.5 * (getattr(branch, key)[i] + getattr(branch, key)[i + 1])
            for key in keys
        }
        return [(None, midpoint)]
    found.sort(key=lambda item: item[0])
    return [(kind, values) for _, kind, values in found]


def _class_after(current: str, kind: str, final: str) -> str:
    """Return the stability class after passing a critical point of ``kind``.

    A first-order point swaps equilibrium and metastable. A fold or branch
    point changes the local stability: a stable state becomes unstable, and
    an unstable one becomes stable, taking ``final`` (the class after the
    whole segment) when that is stable.
    """
    if kind == "first_order":
        swap = {"equilibrium": "metastable", "metastable": "equilibrium"}
        return swap.get(current, current)
    if current != "unstable":
        return "unstable"
    return final if final != "unstable" else "metastable"


def stability_runs(branch, critical_points=(), keys=("alpha", "generalization_error")):
    """Split a branch into runs of points of equal stability class.

    Parameters
    ----------
    branch : StateBranch
        Arrays ``alpha, R, S, C, generalization_error, free_energy``,
        ``n_unstable`` and ``equilibrium`` along the branch.
    critical_points : sequence of CriticalPoint
        Points whose ``states`` may contain this branch. One that lies between
        two points of different class becomes the shared end of both runs.
        When several lie between the same two points, each pair of
        neighbours among them bounds a run of two points whose class follows
        from the kinds passed (see :func:`_class_after`).
    keys : sequence of str
        Quantities to return for each run.

    Returns
    -------
    list of (str, dict)
        ``(stability_class, {key: ndarray})`` for each run in branch order,
        where the class is ``"equilibrium"``, ``"metastable"`` or
        ``"unstable"``. Neighbouring runs share their junction point, so that
        the drawn branch has no gap and no segment of the wrong style.
    """
    classes = _stability_classes(branch)
    n = len(classes)
    runs = []
    start = 0
    head = None  # junction that opens the current run
    for i in range(n):
        last = i == n - 1
        if not last and classes[i + 1] == classes[i]:
            continue
        values = {
            key: list(np.asarray(getattr(branch, key))[start : i + 1]) for key in keys
        }
        junctions = [] if last else _junctions(branch, i, critical_points, keys)
        if head is not None:
            for key in keys:
                values[key].insert(0, head[key])
        if junctions:
            for key in keys:
                values[key].append(junctions[0][1][key])
        runs.append(
            (classes[i], {k: np.asarray(v, dtype=float) for k, v in values.items()})
        )
        # Runs between neighbouring critical points inside one interval.
        current = classes[i]
        for (kind, left), (_, right) in pairwise(junctions):
            current = _class_after(current, kind, classes[i + 1])
            piece = {
                key: np.array([left[key], right[key]], dtype=float) for key in keys
            }
            runs.append((current, piece))
        head = junctions[-1][1] if junctions else None
        start = i + 1
    return _merge_equal_neighbours(runs)


def _merge_equal_neighbours(runs):
    """Join neighbouring runs of one class, dropping their shared junction.

    Repeated consecutive points are removed, and runs of one repeated point
    are dropped. Such runs arise where a sampled point sits on a fold or
    branch point, where the sign of the vanishing eigenvalue, and so the
    class, is rounding noise.
    """
    merged = []
    for stability, values in runs:
        if all(np.all(v == v[0]) for v in values.values()):
            continue
        repeated = np.ones(len(next(iter(values.values()))), dtype=bool)
        repeated[0] = False
        for v in values.values():
            repeated[1:] &= v[1:] == v[:-1]
        values = {key: v[~repeated] for key, v in values.items()}
        if merged and merged[-1][0] == stability:
            previous = merged[-1][1]
            for key in previous:
                previous[key] = np.concatenate([previous[key], values[key][1:]])
            continue
        merged.append((stability, dict(values)))
    return merged


# -- log-axis ticks --------------------------------------------------------------------
# Plain numbers label a log axis whose range lies inside these bounds. Wider
# ranges get powers of ten, whose labels stay short at any exponent.
_PLAIN_LABEL_RANGE = (1e-4, 1e5)

# Strides in decades between labelled powers of ten, tried in this order.
_DECADE_STRIDES = (1, 2, 3, 4, 5, 10, 20, 25, 50, 100)

# Free space between neighbouring tick labels, in units of the label font size.
_LABEL_GAP_EM = 0.5


def _scientific_label(value: float) -> str:
    """Return ``value`` in mathtext as ``10^k`` or ``m x 10^k``."""
    if not value > 0:
        return f"{value:g}"
    exponent = int(np.floor(np.log10(value) + 1e-9))
    mantissa = float(f"{value / 10.0**exponent:.6g}")
    if mantissa >= 10.0:
        # Rounding to 6 digits carried into the next power of ten.
        mantissa, exponent = mantissa / 10.0, exponent + 1
    if mantissa == 1.0:
        return f"$10^{{{exponent}}}$"
    return f"${mantissa:g}\\times10^{{{exponent}}}$"


def _plain_label(value: float) -> str:
    return f"{value:g}"


def _label_size(text: str, fontsize: float) -> tuple[float, float]:
    """Return the width and height of a tick label in points.

    The text is laid out in the font family of ``rcParams``, which is the
    font of tick labels unless a caller changes it on the axis.
    """
    family = tuple(matplotlib.rcParams["font.family"])
    return _text_size(text, fontsize, family, matplotlib.rcParams["mathtext.fontset"])


@functools.lru_cache(maxsize=4096)
def _text_size(text, fontsize, family, mathtext_fontset) -> tuple[float, float]:
    # TextToPath reads the mathtext font set from rcParams, so it is only a
    # part of the cache key here, as is the font family.
    ismath = text.count("$") >= 2
    width, height, _ = TextToPath().get_text_width_height_descent(
        text, FontProperties(family=list(family), size=fontsize), ismath=ismath
    )
    return float(width), float(height)


class _ReadableLogLocator(Locator):
    """Major ticks of a log axis whose labels do not overlap.

    The ticks are the densest of these sets whose labels, as ``label`` writes
    them, fit along the axis with a gap of half the font size between
    neighbours:

    1. powers of ten, every decade or every ``n`` decades (the smallest
       ``n`` of :data:`_DECADE_STRIDES` that fits);
    2. with every decade labelled and plain labels, also 2 and 5 times the
       powers of ten;
    3. with ``integer`` set, also the integers in the view of each decade
       whose integers in the view all fit.

    When fewer than two of these ticks lie in the view, as in most ranges
    of less than a decade, evenly spaced ticks from
    :class:`~matplotlib.ticker.MaxNLocator` take their place, as many as fit.

    Label sizes are measured with :class:`~matplotlib.textpath.TextToPath`
    at the tick label font size, and the axis length is read from the axes
    at every draw, so the choice follows the figure size and the dpi.
    """

    def __init__(self, label, *, plain: bool, integer: bool = False):
        self._label = label
        self._plain = plain
        self._integer = integer

    def __call__(self):
        vmin, vmax = self.axis.get_view_interval()
        return self.tick_values(vmin, vmax)

    def tick_values(self, vmin, vmax):
        lo, hi = sorted((float(vmin), float(vmax)))
        if not (lo > 0 and np.isfinite(hi) and hi > lo):
            return LogLocator().tick_values(vmin, vmax)
        scale = self._scale(lo, hi)
        ticks, stride = self._decades(lo, hi, scale)
        if stride == 1:
            below = 10.0 ** np.floor(np.log10(lo))
            finer = self._in_view(
                [m * t for t in [below, *ticks] for m in (1.0, 2.0, 5.0)], lo, hi
            )
            if self._integer:
                finer = [t for t in finer if t >= 1.0]
            if self._plain and self._fits(finer, scale):
                ticks = finer
                if self._integer:
                    ticks = self._add_integers(ticks, lo, hi, scale)
        if len(ticks) >= 2:
            return np.asarray(ticks)
        spaced = self._evenly_spaced(lo, hi, scale)
        return np.asarray(spaced if len(spaced) > len(ticks) else ticks)

    def _scale(self, lo, hi):
        """Return the log10 of ``lo``, the points per decade along the axis,
        the tick label font size and whether the axis is horizontal."""
        if self.axis is None:
            # Without an axis, e.g. when a caller asks for tick values
            # directly, the axis is taken as 6 inches long.
            length, fontsize, along_x = 432.0, matplotlib.rcParams["font.size"], True
        else:
            along_x = self.axis.axis_name == "x"
            bbox = self.axis.axes.bbox
            pixels = bbox.width if along_x else bbox.height
            length = pixels * 72.0 / self.axis.figure.dpi
            fontsize = self.axis.get_major_ticks(1)[0].label1.get_fontsize()
        return {
            "origin": np.log10(lo),
            "points_per_decade": length / np.log10(hi / lo),
            "fontsize": fontsize,
            "along_x": along_x,
        }

    def _fits(self, ticks, scale) -> bool:
        if len(ticks) < 2:
            return True
        ticks = np.sort(np.asarray(ticks, dtype=float))
        positions = (np.log10(ticks) - scale["origin"]) * scale["points_per_decade"]
        sizes = [_label_size(self._label(t), scale["fontsize"]) for t in ticks]
        extents = np.array([w if scale["along_x"] else h for w, h in sizes])
        needed = 0.5 * (extents[:-1] + extents[1:]) + _LABEL_GAP_EM * scale["fontsize"]
        return bool(np.all(np.diff(positions) >= needed))

    @staticmethod
    def _in_view(ticks, lo, hi):
        slack = 1e-9 * hi
        return sorted({float(t) for t in ticks if lo - slack <= t <= hi + slack})

    def _decades(self, lo, hi, scale):
        """Return the powers of ten at the smallest stride whose labels fit,
        and that stride."""
        first = int(np.floor(np.log10(lo)))
        last = int(np.ceil(np.log10(hi)))
        if self._integer:
            first = max(first, 0)
        ticks = []
        for stride in _DECADE_STRIDES:
            exponents = [e for e in range(first, last + 1) if e % stride == 0]
            ticks = self._in_view([10.0**e for e in exponents], lo, hi)
            if self._fits(ticks, scale) or len(ticks) <= 1:
                return ticks, stride
        return ticks, _DECADE_STRIDES[-1]

    def _add_integers(self, ticks, lo, hi, scale, max_per_decade=200):
        """Add every integer of a decade to ``ticks`` where all of them fit."""
        first = int(np.floor(np.log10(lo)))
        for exponent in range(max(first, 0), int(np.ceil(np.log10(hi)))):
            start = max(int(np.ceil(lo)), 10**exponent)
            stop = min(int(np.floor(hi)), 10 ** (exponent + 1))
            if not 0 < stop - start < max_per_decade:
                continue
            candidate = sorted(set(ticks) | {float(k) for k in range(start, stop + 1)})
            if self._fits(candidate, scale):
                ticks = candidate
        return ticks

    def _evenly_spaced(self, lo, hi, scale):
        """Return the largest set of MaxNLocator ticks in the view whose labels fit.

        When no two labels fit, the one tick nearest the geometric centre of
        the view is returned, and none when the view contains no candidate.
        """
        candidates = []
        for bins in range(9, 0, -1):
            locator = MaxNLocator(
                nbins=bins,
                integer=self._integer,
                steps=[1, 2, 2.5, 5, 10],
                min_n_ticks=1,
            )
            ticks = self._in_view(locator.tick_values(lo, hi), lo, hi)
            if self._integer:
                ticks = [t for t in ticks if float(t).is_integer()]
            if len(ticks) >= 2 and self._fits(ticks, scale):
                return ticks
            candidates.extend(ticks)
        if not candidates:
            return []
        centre = 0.5 * (np.log10(lo) + np.log10(hi))
        return [min(candidates, key=lambda t: abs(np.log10(t) - centre))]


def _readable_log_ticks(axis, lo, hi, *, integer=False):
    """Label a log axis so that its tick labels do not overlap.

    Plain numbers label ranges inside :data:`_PLAIN_LABEL_RANGE` and integer
    axes, and powers of ten label wider ranges. ``lo`` and ``hi`` are the
    data range that chooses the label style; the ticks follow the view.
    """
    plain = integer or (_PLAIN_LABEL_RANGE[0] <= lo and hi <= _PLAIN_LABEL_RANGE[1])
    label = _plain_label if plain else _scientific_label
    axis.set_major_locator(_ReadableLogLocator(label, plain=plain, integer=integer))
    axis.set_major_formatter(FuncFormatter(lambda value, _: label(value)))
    axis.set_minor_formatter(NullFormatter())


# -- shared drawing steps --------------------------------------------------------------
def _draw_branches(ax, result, colors, quantity):
    classes_seen = set()
    for branch in result.branches:
        for stability, values in stability_runs(
            branch, result.critical_points, ("alpha", quantity)
        ):
            ax.plot(
                values["alpha"],
                values[quantity],
                color=colors[branch.name],
                linestyle=STABILITY_STYLES[stability],
                linewidth=1.8,
                gid=f"branch:{branch.name}:{stability}",
            )
            classes_seen.add(stability)
    return classes_seen


def _draw_critical_points(ax, result, quantity):
    kinds_seen = set()
    for point in result.critical_points:
        marker = MARKERS.get(point.kind, "X")
        drawn = []
        for state in point.states.values():
            y = state.get(quantity)
            if y is None or any(np.isclose(y, d, rtol=1e-9, atol=1e-12) for d in drawn):
                continue
            drawn.append(y)
            ax.plot(
                [point.alpha],
                [y],
                linestyle="none",
                marker=marker,
                markersize=7,
                markerfacecolor="white",
                markeredgecolor="black",
                markeredgewidth=1.2,
                zorder=4,
                gid=f"critical:{point.kind}",
            )
        kinds_seen.add(point.kind)
    return kinds_seen


def _draw_transitions(ax, result, label=True):
    kinds_seen = set()
    for transition in result.transitions:
        style = _TRANSITION_STYLES.get(
            transition.kind, _TRANSITION_STYLES["continuous"]
        )
        ax.axvline(
            transition.alpha,
            linewidth=1.0,
            zorder=1,
            gid=f"transition:{transition.kind}",
            **style,
        )
        if label:
            ax.annotate(
                f"{_TRANSITION_LABELS.get(transition.kind, transition.kind)}\n"
                f"$\\alpha$ = {transition.alpha:.4g}",
                xy=(transition.alpha, 1.0),
                xycoords=("data", "axes fraction"),
                xytext=(3, -4),
                textcoords="offset points",
                rotation=90,
                va="top",
                ha="left",
                fontsize="x-small",
                color=style["color"],
            )
        kinds_seen.add(transition.kind)
    return kinds_seen


def _legend_handles(result, colors, classes_seen, kinds_seen, transitions_seen):
    handles = [
        Line2D([], [], color=colors[b.name], linewidth=2.5, label=b.name)
        for b in result.branches
    ]
    for stability in ("equilibrium", "metastable", "unstable"):
        if stability in classes_seen:
            handles.append(
                Line2D(
                    [],
                    [],
                    color="0.3",
                    linestyle=STABILITY_STYLES[stability],
                    linewidth=1.8,
                    label=_STABILITY_LABELS[stability],
                )
            )
    for kind in ("branch_point", "fold", "first_order", "symmetry_breaking"):
        if kind in kinds_seen:
            handles.append(
                Line2D(
                    [],
                    [],
                    linestyle="none",
                    marker=MARKERS[kind],
                    markerfacecolor="white",
                    markeredgecolor="black",
                    label=_KIND_LABELS[kind],
                )
            )
    for kind in ("continuous", "first_order"):
        if kind in transitions_seen:
            handles.append(
                Line2D(
                    [],
                    [],
                    linewidth=1.0,
                    label=_TRANSITION_LABELS[kind],
                    **_TRANSITION_STYLES[kind],
                )
            )
    return handles


def _set_alpha_axis(ax, result, log_alpha):
    lo, hi = (float(a) for a in result.alpha_range)
    if log_alpha:
        ax.set_xscale("log")
        _readable_log_ticks(ax.xaxis, lo, hi)
    ax.set_xlim(lo, hi)
    ax.set_xlabel(r"$\alpha = \beta P / (K N)$")


# -- zoom on close critical points ---------------------------------------------------
#: An inset zooms on the critical points when they spread over less than this
#: fraction of the logarithmic alpha axis, where they would overlap.
ZOOM_FRACTION = 0.05

# Candidate lower-left corners of the inset, in axes fractions, in order of
# preference; the margins leave room for the inset's tick labels.
_INSET_POSITIONS = [(x, y) for y in (0.1, 0.33, 0.56) for x in (0.14, 0.35, 0.56)]
_INSET_SIZE = 0.36


def _zoom_window(result):
    """Return the alpha window of the zoom inset, or None when none is needed."""
    lo, hi = (float(a) for a in result.alpha_range)
    # Symmetry-breaking points can lie far from the transition; the inset
    # resolves the branch point, the folds and the equal-F points.
    alphas = {p.alpha for p in result.critical_points if p.kind != "symmetry_breaking"}
    alphas |= {t.alpha for t in result.transitions}
    alphas = sorted(a for a in alphas if lo <= a <= hi)
    if len(alphas) < 2:
        return None
    first, last = alphas[0], alphas[-1]
    if np.log(last / first) >= ZOOM_FRACTION * np.log(hi / lo):
        return None
    margin = 0.5 * (last - first)
    return max(lo, first - margin), min(hi, last + margin)


def _y_range_in_window(lines, window):
    """Return the range of y that line segments take for x inside ``window``."""
    start, stop = window
    ys = []
    for line in lines:
        x = np.asarray(line.get_xdata(), dtype=float)
        y = np.asarray(line.get_ydata(), dtype=float)
        inside = (x >= start) & (x <= stop)
        ys.extend(y[inside])
        # Segments that cross an edge of the window contribute their value there.
        for edge in (start, stop):
            crossing = (x[:-1] - edge) * (x[1:] - edge) < 0
            for i in np.nonzero(crossing)[0]:
                t = (edge - x[i]) / (x[i + 1] - x[i])
                ys.append(y[i] + t * (y[i + 1] - y[i]))
    ys = np.asarray(ys, dtype=float)
    ys = ys[np.isfinite(ys)]
    if len(ys) == 0:
        return None
    low, high = float(ys.min()), float(ys.max())
    pad = 0.08 * (high - low) or 0.01 * max(abs(high), 1e-12)
    return low - pad, high + pad


def _densify(points: np.ndarray, step: float = 0.01) -> np.ndarray:
    """Return points along the polyline ``points`` at most ``step`` apart."""
    if len(points) < 2:
        return points
    pieces = [points[:1]]
    for start, stop in pairwise(points):
        count = (
            int(np.ceil(np.linalg.norm(stop - start) / step))
            if np.all(np.isfinite([start, stop]))
            else 1
        )
        t = np.arange(1, count + 1)[:, None] / count
        pieces.append(start + t * (stop - start))
    return np.vstack(pieces)


def _lines_in_axes_fractions(ax) -> np.ndarray:
    to_axes = ax.transScale + ax.transLimits
    points = [np.zeros((0, 2))]
    for line in ax.lines:
        if str(line.get_gid()).startswith("transition"):
            continue
        xy = np.column_stack([line.get_xdata(), line.get_ydata()]).astype(float)
        if len(xy):
            points.append(_densify(to_axes.transform(xy)))
    return np.vstack(points)


def _inset_position(ax, result, window, y_range):
    """Return the lower-left corner (axes fractions) of the zoom inset.

    Each candidate position is scored by the length of curve it would hide,
    with heavy penalties for covering a transition label or the zoomed
    region itself, and the lowest score wins.
    """
    # Reading the limits applies any pending autoscaling to the transforms.
    ax.get_xlim()
    ax.get_ylim()
    to_axes = ax.transScale + ax.transLimits
    curves = _lines_in_axes_fractions(ax)
    (zoom_x0, zoom_y0), (zoom_x1, zoom_y1) = to_axes.transform(
        [[window[0], y_range[0]], [window[1], y_range[1]]]
    )
    label_x = [
        float(to_axes.transform([[t.alpha, 1.0]])[0, 0]) for t in result.transitions
    ]
    best, best_score = _INSET_POSITIONS[0], np.inf
    for x0, y0 in _INSET_POSITIONS:
        x1, y1 = x0 + _INSET_SIZE, y0 + _INSET_SIZE
        inside = (
            (curves[:, 0] >= x0)
            & (curves[:, 0] <= x1)
            & (curves[:, 1] >= y0)
            & (curves[:, 1] <= y1)
        )
        score = float(inside.sum())
        # Transition lines, and their labels in the top quarter of the axes.
        for x in label_x:
            if x0 - 0.04 <= x <= x1:
                score += 20.0 + (1000.0 if y1 > 0.72 else 0.0)
        overlap_x = max(0.0, min(x1, zoom_x1) - max(x0, zoom_x0))
        overlap_y = max(0.0, min(y1, zoom_y1) - max(y0, zoom_y0))
        if overlap_x > 0 and overlap_y > 0:
            score += 1000.0
        if score < best_score:
            best, best_score = (x0, y0), score
    return best


def _digits_for(width: float) -> int:
    """Return the decimals that tell apart ticks spread over ``width``."""
    if not width > 0:
        return 6
    return max(0, int(np.ceil(-np.log10(width))) + 1)


def _add_zoom(ax, result, colors, quantity, window):
    """Draw the branches near the critical points again in an inset of ``ax``."""
    # Transition lines span the axes in axes coordinates, so they are left out.
    data_lines = [
        line for line in ax.lines if not str(line.get_gid()).startswith("transition")
    ]
    y_range = _y_range_in_window(data_lines, window)
    if y_range is None:
        return None
    x0, y0 = _inset_position(ax, result, window, y_range)
    inset = ax.inset_axes([x0, y0, _INSET_SIZE, _INSET_SIZE])
    inset.set_gid("zoom")
    _draw_branches(inset, result, colors, quantity)
    _draw_critical_points(inset, result, quantity)
    _draw_transitions(inset, result, label=False)
    inset.set_xlim(*window)
    inset.set_ylim(*y_range)
    width = window[1] - window[0]
    digits = _digits_for(width)
    inset.xaxis.set_major_locator(MaxNLocator(3))
    inset.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:.{digits}f}"))
    inset.yaxis.set_major_locator(MaxNLocator(3))
    y_digits = _digits_for(y_range[1] - y_range[0])
    inset.yaxis.set_major_formatter(FuncFormatter(lambda y, _: f"{y:.{y_digits}f}"))
    inset.tick_params(labelsize="x-small")
    inset.set_facecolor("white")
    ax.indicate_inset_zoom(inset, edgecolor="0.4")
    return inset


# -- public figures --------------------------------------------------------------------
def plot_learning_curve(
    result, ax=None, path=None, *, log_alpha=True, log_error=False, zoom=True
):
    r"""Plot the generalisation error of every branch against alpha.

    Each branch has one colour; its equilibrium parts are solid, metastable
    parts dashed and unstable parts dotted. Branch points, folds and
    first-order points carry markers on the branches they involve, and every
    change of the equilibrium state is a labelled vertical line. When the
    critical points lie too close together to tell apart (within
    :data:`ZOOM_FRACTION` of the logarithmic alpha axis), an inset with a
    linear alpha axis zooms on them.

    Parameters
    ----------
    result : SpecializationResult
        Output of :func:`reluspec.analysis.solve` or
        :meth:`SpecializationResult.from_json`.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on; a new figure is created when omitted.
    path : str or path-like, optional
        File to write the figure to.
    log_alpha : bool
        Logarithmic alpha axis (default True).
    log_error : bool
        Logarithmic error axis (default False); at large alpha the error of
        a specialised state decays like a power of alpha.
    zoom : bool
        Add the inset on close critical points (default True).

    The legend sits to the right of the axes, outside the plotted data.

    Returns
    -------
    matplotlib.figure.Figure

    Notes
    -----
    The generalisation error is
    :math:`\epsilon_g = \tfrac12 \langle (\sigma - \tau)^2 \rangle`, with
    student output :math:`\sigma` and teacher output :math:`\tau`.
    """
    if ax is None:
        fig, ax = _pyplot().subplots(figsize=(10.0, 5.0), layout="constrained")
    else:
        fig = ax.figure
    colors = _branch_colors([b.name for b in result.branches])
    classes_seen = _draw_branches(ax, result, colors, "generalization_error")
    kinds_seen = _draw_critical_points(ax, result, "generalization_error")
    transitions_seen = _draw_transitions(ax, result)
    _set_alpha_axis(ax, result, log_alpha)
    if log_error:
        ax.set_yscale("log")
    ax.set_ylabel(r"generalisation error $\epsilon_g$")
    ax.set_title(f"{result.activation}, K = {result.K}")
    ax.grid(True, which="major", alpha=0.3)
    window = _zoom_window(result) if zoom else None
    if window is not None:
        _add_zoom(ax, result, colors, "generalization_error", window)
    ax.legend(
        handles=_legend_handles(
            result, colors, classes_seen, kinds_seen, transitions_seen
        ),
        fontsize="small",
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        borderaxespad=0.0,
    )
    return _finish(fig, path)


def plot_order_parameters(result, path=None, *, axes=None, log_alpha=True, zoom=True):
    """Plot the order parameters R, S and C of every branch against alpha.

    Three panels share the alpha axis and the conventions of
    :func:`plot_learning_curve`: one colour per branch, solid for the
    equilibrium, dashed for metastable and dotted for unstable states,
    markers at critical points and vertical lines at transitions.

    Parameters
    ----------
    result : SpecializationResult
        The solved problem.
    path : str or path-like, optional
        File to write the figure to.
    axes : sequence of three matplotlib.axes.Axes, optional
        Axes for R, S and C; a new figure with three panels when omitted.
    log_alpha : bool
        Logarithmic alpha axis (default True).
    zoom : bool
        Add to each panel an inset on close critical points, as in
        :func:`plot_learning_curve` (default True).

    Returns
    -------
    matplotlib.figure.Figure

    Notes
    -----
    In the site-symmetric ansatz ``R_km = R delta_km + S (1 - delta_km)`` and
    ``Q_kl = delta_kl + C (1 - delta_kl)``, so R = S on the unspecialised
    branch.
    """
    own_figure = axes is None
    if own_figure:
        fig, axes = _pyplot().subplots(
            1, 3, figsize=(14.0, 4.6), sharex=True, layout="constrained"
        )
    else:
        if len(axes) != 3:
            raise ValueError(f"axes must hold three Axes (R, S, C), got {len(axes)}")
        fig = axes[0].figure
    colors = _branch_colors([b.name for b in result.branches])
    classes_seen, kinds_seen, transitions_seen = set(), set(), set()
    for ax, (key, label) in zip(axes, _ORDER_PARAMETERS, strict=True):
        classes_seen |= _draw_branches(ax, result, colors, key)
        kinds_seen |= _draw_critical_points(ax, result, key)
        transitions_seen |= _draw_transitions(ax, result, label=False)
        _set_alpha_axis(ax, result, log_alpha)
        ax.set_ylabel(label)
        ax.grid(True, which="major", alpha=0.3)
        window = _zoom_window(result) if zoom else None
        if window is not None:
            _add_zoom(ax, result, colors, key, window)
    handles = _legend_handles(
        result, colors, classes_seen, kinds_seen, transitions_seen
    )
    if own_figure:
        fig.legend(
            handles=handles, fontsize="small", loc="outside lower center", ncol=4
        )
    else:
        # Placing a figure legend outside the panels needs constrained layout,
        # which a caller's figure may not use.
        axes[0].legend(handles=handles, fontsize="x-small", loc="best")
    fig.suptitle(f"order parameters, {result.activation}, K = {result.K}")
    return _finish(fig, path)


def _draw_diagram_rows(ax, rows, color, activation):
    """Draw the critical points and transitions of one activation on ``ax``.

    Returns the set of critical-point kinds drawn and whether a transition was.
    """
    kinds_seen = set()
    series: dict = {}
    for row in rows:
        if not row.kind.startswith("transition:"):
            series.setdefault((row.kind, row.branches), []).append(row)
    for (kind, _), points in series.items():
        Ks = np.array([p.K for p in points], dtype=float)
        alphas = np.array([p.alpha for p in points], dtype=float)
        order = np.argsort(Ks)
        if len(points) > 1 and len(np.unique(Ks)) == len(Ks):
            ax.plot(
                Ks[order],
                alphas[order],
                color=color,
                linewidth=0.8,
                alpha=0.5,
                zorder=1,
                gid=f"series:{activation}:{kind}",
            )
        ax.plot(
            Ks[order],
            alphas[order],
            linestyle="none",
            marker=MARKERS.get(kind, "X"),
            markersize=6,
            color=color,
            zorder=3,
            gid=f"critical:{activation}:{kind}",
        )
        kinds_seen.add(kind)
    transitions = [r for r in rows if r.kind.startswith("transition:")]
    if transitions:
        ax.plot(
            [r.K for r in transitions],
            [r.alpha for r in transitions],
            linestyle="none",
            marker="o",
            markersize=13,
            markerfacecolor="none",
            markeredgecolor=color,
            markeredgewidth=1.2,
            zorder=2,
            gid=f"transition:{activation}",
        )
    return kinds_seen, bool(transitions)


def _diagram_legend_handles(activations, colors, kinds_seen, transition_seen):
    handles = [
        Line2D([], [], color=colors[a], linewidth=2.5, label=a) for a in activations
    ]
    for kind in ("branch_point", "fold", "first_order", "symmetry_breaking"):
        if kind in kinds_seen:
            handles.append(
                Line2D(
                    [],
                    [],
                    linestyle="none",
                    marker=MARKERS[kind],
                    color="0.3",
                    label=_KIND_LABELS[kind],
                )
            )
    if transition_seen:
        handles.append(
            Line2D(
                [],
                [],
                linestyle="none",
                marker="o",
                markersize=13,
                markerfacecolor="none",
                markeredgecolor="0.3",
                label="equilibrium transition",
            )
        )
    return handles


def _limit_to_main_points(panel, rows, listed_at_most=3):
    """Fit the alpha axis to the branch points, folds, first-order points and
    transitions, and name the symmetry-breaking points that fall outside.

    Those can lie far from the others (for ReLU, alpha = 44 against about
    2 pi), so that the autoscaled axis would squeeze the transition
    structure into one line.
    """
    main = [r.alpha for r in rows if r.kind != "symmetry_breaking"]
    if not main:
        return
    low, high = min(main), max(main)
    pad = max(0.08 * (high - low), 2e-3 * abs(high))
    outside = sorted(
        (r for r in rows if r.kind == "symmetry_breaking"),
        key=lambda r: (r.K, r.alpha),
    )
    outside = [r for r in outside if not low - pad <= r.alpha <= high + pad]
    if not outside:
        return
    panel.set_ylim(low - pad, high + pad)
    listed = ", ".join(
        f"K = {r.K} ({r.alpha:.4g})" for r in outside[:listed_at_most]
    )
    more = ""
    if len(outside) > listed_at_most:
        more = f" and {len(outside) - listed_at_most} more"
    panel.text(
        0.01,
        0.98,
        f"symmetry breaking off the scale at alpha: {listed}{more}",
        transform=panel.transAxes,
        va="top",
        fontsize="x-small",
        color="0.3",
    )


def _set_K_axis(ax, K_min, K_max):
    """Set a log K axis with integer ticks spanning at least a factor of 2.

    A padding factor of 1.15 on each side separates the outermost K from the
    frame. A single K, or K values closer than a factor of 2, get more, so
    that the axis still shows the neighbouring integers.
    """
    pad = max(1.15, float(np.sqrt(2.0 * K_min / K_max)))
    ax.set_xlim(K_min / pad, K_max * pad)
    _readable_log_ticks(ax.xaxis, K_min, K_max, integer=True)


def plot_phase_diagram(diagram, path=None, *, ax=None, separate=True, log_alpha=False):
    """Plot the critical values of alpha against K for each activation.

    Each activation has one colour and each kind of critical point a marker:
    circles for branch points, triangles for folds (spinodals) and squares
    for first-order points (equal free energies). A large ring marks the
    alpha where the equilibrium state changes. Points of one kind on the same
    branches are joined across K by a thin line when there is one per K.

    Parameters
    ----------
    diagram : PhaseDiagram
        Output of :func:`reluspec.analysis.phase_diagram`.
    path : str or path-like, optional
        File to write the figure to.
    ax : matplotlib.axes.Axes, optional
        Axes to draw every activation on; a new figure is created when omitted.
    separate : bool
        In a new figure, give each activation its own panel with its own
        alpha range (default True), because the critical values of different
        activations can differ by an order of magnitude while those of one
        activation lie close together.
    log_alpha : bool
        Logarithmic alpha axis (default False). The K axis is always
        logarithmic, with integer ticks.

    Returns
    -------
    matplotlib.figure.Figure
    """
    activations = list(dict.fromkeys(row.activation for row in diagram.rows))
    activations += [name for name, _ in diagram.results if name not in activations]
    extra = iter(_EXTRA_COLORS * (1 + len(activations)))
    colors = {a: ACTIVATION_COLORS.get(a) or next(extra) for a in activations}

    own_figure = ax is None
    if not own_figure:
        fig, panels = ax.figure, [(ax, activations)]
    elif separate and len(activations) > 1:
        fig, axes = _pyplot().subplots(
            len(activations),
            1,
            figsize=(8.0, 1.0 + 3.0 * len(activations)),
            sharex=True,
            layout="constrained",
        )
        panels = [(panel, [a]) for panel, a in zip(axes, activations, strict=True)]
    else:
        fig, ax = _pyplot().subplots(figsize=(8.0, 5.5), layout="constrained")
        panels = [(ax, activations)]

    # Rows at K = infinity (or with an infinite alpha) have no place on a log K
    # axis; plot_critical_curves draws them against 1/K.
    finite_rows = [
        r for r in diagram.rows if np.isfinite(float(r.K)) and np.isfinite(r.alpha)
    ]
    Ks_all = sorted({row.K for row in finite_rows} | {K for _, K in diagram.results})
    kinds_seen, transition_seen = set(), False
    for panel, names in panels:
        for activation in names:
            rows = [r for r in finite_rows if r.activation == activation]
            kinds, transitions = _draw_diagram_rows(
                panel, rows, colors[activation], activation
            )
            kinds_seen |= kinds
            transition_seen |= transitions
        panel.set_xscale("log")
        if Ks_all:
            _set_K_axis(panel, Ks_all[0], Ks_all[-1])
        alphas = [r.alpha for r in finite_rows if r.activation in names and r.alpha > 0]
        if log_alpha:
            panel.set_yscale("log")
            if alphas:
                _readable_log_ticks(panel.yaxis, min(alphas), max(alphas))
        _limit_to_main_points(panel, [r for r in finite_rows if r.activation in names])
        label = names[0] if len(names) == 1 and len(panels) > 1 else "critical"
        panel.set_ylabel(f"{label} $\\alpha$")
        panel.grid(True, which="major", alpha=0.3)
    panels[-1][0].set_xlabel("number of hidden units K")
    lo, hi = (float(a) for a in diagram.alpha_range)
    title = f"critical points for $\\alpha$ in [{lo:g}, {hi:g}]"

    handles = _diagram_legend_handles(activations, colors, kinds_seen, transition_seen)
    if own_figure:
        # The title goes over the top panel, not the figure, so that it is
        # centred over the axes rather than over the axes and the legend.
        panels[0][0].set_title(title)
        fig.legend(handles=handles, fontsize="small", loc="outside right upper")
    else:
        ax.set_title(title)
        ax.legend(handles=handles, fontsize="small", loc="best", framealpha=0.9)
    return _finish(fig, path)


# -- critical curves against 1/K -------------------------------------------------------
#: Colour of each kind of critical point in :func:`plot_critical_curves`.
CURVE_COLORS = {
    "branch_point": "tab:blue",
    "fold": "tab:orange",
    "first_order": "tab:green",
}

# Line styles that tell activations apart when they share one Axes.
_ACTIVATION_LINESTYLES = ("-", "--", "-.", ":")


def _limit_note(kind: str, exponent: int, limit: float) -> str:
    """Return the legend note of a critical alpha that grows like ``K^exponent``."""
    scaled = "K" if exponent == 1 else f"K^{{{exponent}}}"
    return (
        f"{_KIND_LABELS[kind]}: $\\alpha/{scaled} \\to {limit:.6g}$ "
        "as $K \\to \\infty$"
    )


def _collect_limits(curves, rows, panels):
    """Return the K = infinity values of alpha and the notes of each activation.

    The values, keyed by ``(activation, kind)``, come from curves whose alpha
    stays finite and from the diagram's K = infinity rows, with values equal
    to 1e-9 relative counted once. Curves and rows whose alpha grows with K
    give a note instead.
    """
    values: dict = {}
    notes: dict = {activation: [] for activation in panels}
    noted = set()
    for curve in curves:
        key = (curve.activation, curve.kind)
        if curve.alpha_exponent == 0:
            values.setdefault(key, []).append(float(curve.limit))
        else:
            notes[curve.activation].append(
                _limit_note(curve.kind, curve.alpha_exponent, curve.limit)
            )
            noted.add(key)
    for row in rows:
        key = (row.activation, row.kind)
        if not np.isinf(float(row.K)) or row.activation not in panels:
            continue
        if np.isfinite(row.alpha):
            known = values.setdefault(key, [])
            if not any(np.isclose(row.alpha, v, rtol=1e-9, atol=0) for v in known):
                known.append(float(row.alpha))
        elif key not in noted:
            label = _KIND_LABELS[row.kind]
            notes[row.activation].append(
                f"{label}: $\\alpha \\to \\infty$ as $K \\to \\infty$"
            )
            noted.add(key)
    return values, notes


def _critical_curve_legend(kinds, activation_styles, finite_drawn, limit_drawn, notes):
    handles = [
        Line2D(
            [],
            [],
            color=CURVE_COLORS[kind],
            marker=MARKERS[kind],
            linewidth=1.5,
            label=_KIND_LABELS[kind],
        )
        for kind in CURVE_COLORS
        if kind in kinds
    ]
    handles += [
        Line2D([], [], color="0.3", linestyle=style, linewidth=1.5, label=activation)
        for activation, style in activation_styles.items()
    ]
    if finite_drawn:
        handles.append(
            Line2D(
                [],
                [],
                linestyle="none",
                marker="o",
                color="0.3",
                label="filled: solved at finite K",
            )
        )
    if limit_drawn:
        handles.append(
            Line2D(
                [],
                [],
                linestyle="none",
                marker="o",
                markersize=8,
                markerfacecolor="none",
                markeredgecolor="0.3",
                label="hollow: $K \\to \\infty$ limit (at $1/K = 0$)",
            )
        )
    handles += [Line2D([], [], linestyle="none", label=note) for note in notes]
    return handles


def plot_critical_curves(curves, diagram=None, path=None, *, ax=None, alpha_max=None):
    """Plot critical values of alpha against ``1/K``, ending at ``K = infinity``.

    Each kind of critical point has a colour and a marker. Curves traced in
    ``1/K`` are lines, critical points solved at finite K are filled markers
    at ``1/K``, and the ``K = infinity`` limits are hollow markers at
    ``1/K = 0``. A critical alpha that grows like a power of K (the erf
    branch point, alpha ~ K) has no point at ``1/K = 0``, and the legend
    names the limit of ``alpha / K^k`` instead. Limits above ``alpha_max``
    are named there too. The legend sits outside the axes, so that no note
    covers data.

    Parameters
    ----------
    curves : iterable of CriticalCurve
        Output of :func:`reluspec.analysis.limit.trace_critical_curve`.
    diagram : PhaseDiagram, optional
        Critical points to draw as markers: finite-K rows at ``1/K`` and the
        rows at ``K = math.inf`` (:func:`reluspec.analysis.diagram.limit_rows`)
        at ``1/K = 0``.
    path : str or path-like, optional
        File to write the figure to.
    ax : matplotlib.axes.Axes, optional
        Axes to draw every activation on, each with its own line style; a
        new figure with one panel per activation is created when omitted.
    alpha_max : float, optional
        Upper end of the alpha axis; curves and points above it are cut.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ValueError
        If ``alpha_max`` is not a positive number, or if neither ``curves``
        nor ``diagram`` contains a branch point, fold or first-order point.
    """
    curves = list(curves)
    rows = [] if diagram is None else diagram.rows
    rows = [r for r in rows if r.kind in CURVE_COLORS]
    if alpha_max is not None and not float(alpha_max) > 0:
        raise ValueError(f"alpha_max = {alpha_max!r} is invalid: it must be > 0")
    top = np.inf if alpha_max is None else float(alpha_max)
    activations = list(
        dict.fromkeys([c.activation for c in curves] + [r.activation for r in rows])
    )
    if not activations:
        raise ValueError(
            "nothing to plot: curves and diagram contain no branch point, fold or "
            "first-order point"
        )
    if ax is None:
        fig, axes = _pyplot().subplots(
            len(activations),
            1,
            figsize=(8.0, 1.0 + 3.2 * len(activations)),
            layout="constrained",
            squeeze=False,
        )
        panels = {a: axes[i, 0] for i, a in enumerate(activations)}
        linestyles = dict.fromkeys(activations, "-")
    else:
        fig = ax.figure
        panels = dict.fromkeys(activations, ax)
        linestyles = {
            a: _ACTIVATION_LINESTYLES[i % len(_ACTIVATION_LINESTYLES)]
            for i, a in enumerate(activations)
        }

    kinds = {a: set() for a in activations}
    eps_max = 0.0
    for curve in curves:
        eps = np.asarray(curve.eps, dtype=float)
        alpha = np.asarray(curve.alpha, dtype=float)
        keep = np.isfinite(alpha) & (alpha <= top)
        panels[curve.activation].plot(
            eps[keep],
            alpha[keep],
            color=CURVE_COLORS[curve.kind],
            linestyle=linestyles[curve.activation],
            linewidth=1.5,
            zorder=2,
            gid=f"curve:{curve.activation}:{curve.kind}",
        )
        kinds[curve.activation].add(curve.kind)
        eps_max = max(eps_max, float(np.max(eps, initial=0.0)))

    finite: dict = {}
    for row in rows:
        if np.isfinite(float(row.K)) and np.isfinite(row.alpha) and row.alpha <= top:
            finite.setdefault((row.activation, row.kind), []).append(row)
    for (activation, kind), points in finite.items():
        points.sort(key=lambda r: r.K)
        panels[activation].plot(
            [1.0 / r.K for r in points],
            [r.alpha for r in points],
            linestyle="none",
            marker=MARKERS[kind],
            markersize=6,
            color=CURVE_COLORS[kind],
            zorder=3,
            gid=f"finite:{activation}:{kind}",
        )
        kinds[activation].add(kind)
        eps_max = max(eps_max, 1.0 / points[0].K)

    limits, notes = _collect_limits(curves, rows, panels)
    limit_drawn = set()
    for (activation, kind), values in limits.items():
        on_axis = [v for v in values if v <= top]
        for value in values:
            if value > top:
                notes[activation].append(
                    f"{_KIND_LABELS[kind]} at $K = \\infty$: $\\alpha$ = {value:.6g}, "
                    "above the axis"
                )
        if not on_axis:
            continue
        panels[activation].plot(
            np.zeros(len(on_axis)),
            on_axis,
            linestyle="none",
            marker=MARKERS[kind],
            markersize=8,
            markerfacecolor="none",
            markeredgecolor=CURVE_COLORS[kind],
            markeredgewidth=1.2,
            zorder=4,
            gid=f"limit:{activation}:{kind}",
        )
        kinds[activation].add(kind)
        limit_drawn.add(activation)

    eps_max = eps_max or 0.5
    for panel in dict.fromkeys(panels.values()):
        names = [a for a in activations if panels[a] is panel]
        handles = _critical_curve_legend(
            set().union(*(kinds[a] for a in names)),
            {a: linestyles[a] for a in names} if len(names) > 1 else {},
            any(a == key[0] for a in names for key in finite),
            any(a in limit_drawn for a in names),
            [
                f"{a}, {note}" if len(names) > 1 else note
                for a in names
                for note in notes[a]
            ],
        )
        panel.set_title(", ".join(names))
        panel.set_xlabel("$1/K$")
        panel.set_ylabel("critical $\\alpha$")
        panel.set_xlim(-0.02 * eps_max, 1.04 * eps_max)
        panel.grid(True, alpha=0.3)
        panel.legend(
            handles=handles,
            fontsize="small",
            loc="upper left",
            bbox_to_anchor=(1.02, 1.0),
            borderaxespad=0.0,
        )
    return _finish(fig, path)
