"""Figures of specialisation results: learning curves, order parameters, diagrams.

Every function draws with matplotlib, returns the :class:`~matplotlib.figure.Figure`
and writes it to ``path`` when one is given (the format follows the file
suffix, e.g. ``.png``, ``.pdf`` or ``.svg``).

Line styles encode the state of each point of a branch:

* solid: the equilibrium state, the global minimum of the free energy F;
* dashed: metastable, a local minimum of F inside the ansatz that is not global;
* dotted: unstable, a saddle of F (``n_unstable > 0``).

A branch is drawn as runs of equal style. Two neighbouring runs meet at the
critical point where the style changes (a fold, branch point or first-order
point on that branch) when the result lists one there. Otherwise they meet
halfway between the last point of one run and the first point of the next.

When no display is available (Linux without ``DISPLAY`` or
``WAYLAND_DISPLAY``) and pyplot has not been imported yet, new figures use
the non-interactive Agg backend, unless ``MPLBACKEND`` chooses another one.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence

import matplotlib
import numpy as np
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

__all__ = [
    "ACTIVATION_COLORS",
    "BRANCH_COLORS",
    "MARKERS",
    "STABILITY_STYLES",
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

#: Colour of each branch kind; further branches of a kind (``" #2"``) and
#: unknown names take the next colours of the default cycle.
BRANCH_COLORS = {
    "unspecialized": "tab:blue",
    "specialized R>S": "tab:orange",
    "specialized R<S": "tab:green",
}

_EXTRA_COLORS = ("tab:purple", "tab:brown", "tab:pink", "tab:olive", "tab:cyan")

#: Marker of each critical-point kind.
MARKERS = {"branch_point": "o", "fold": "v", "first_order": "s"}

_KIND_LABELS = {
    "branch_point": "branch point",
    "fold": "fold (spinodal)",
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

#: Colour of each activation in phase diagrams; other names use the cycle.
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
    n_unstable = np.asarray(branch.n_unstable)
    equilibrium = np.asarray(branch.equilibrium, dtype=bool)
    classes = np.full(len(n_unstable), "metastable", dtype=object)
    classes[equilibrium] = "equilibrium"
    classes[n_unstable > 0] = "unstable"
    return classes


def _junction(branch, i, critical_points, keys):
    """Return the point where the style changes between points ``i`` and ``i + 1``.

    A critical point of this branch is the junction when it lies within the
    ellipse through both points whose axes are 1.5 times their distance, in
    the coordinates (log alpha, R, S, C). Otherwise the midpoint is used.
    """
    before = np.array(
        [np.log(branch.alpha[i]), branch.R[i], branch.S[i], branch.C[i]], dtype=float
    )
    after = np.array(
        [
            np.log(branch.alpha[i + 1]),
            branch.R[i + 1],
            branch.S[i + 1],
            branch.C[i + 1],
        ],
        dtype=float,
    )
    chord = float(np.linalg.norm(after - before))
    best, best_spread = None, np.inf
    for point in critical_points:
        state = point.states.get(branch.name)
        if state is None or not point.alpha > 0:
            continue
        candidate = np.array(
            [np.log(point.alpha), state["R"], state["S"], state["C"]], dtype=float
        )
        spread = np.linalg.norm(candidate - before) + np.linalg.norm(candidate - after)
        if spread <= 1.5 * chord + 1e-14 and spread < best_spread:
            best = {"alpha": point.alpha, **state}
            best_spread = spread
    if best is None:
        return {
            key: 0.5 * (getattr(branch, key)[i] + getattr(branch, key)[i + 1])
            for key in keys
        }
    return {key: best[key] for key in keys}


def stability_runs(branch, critical_points=(), keys=("alpha", "generalization_error")):
    """Split a branch into runs of points of equal stability class.

    Parameters
    ----------
    branch : StateBranch
        Arrays ``alpha, R, S, C, generalization_error, free_energy``,
        ``n_unstable`` and ``equilibrium`` along the branch.
    critical_points : sequence of CriticalPoint
        Points whose ``states`` may contain this branch; one that lies between
        two points of different class becomes the shared end of both runs.
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
    if n == 0:
        return []
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
        tail = None if last else _junction(branch, i, critical_points, keys)
        for key in keys:
            if head is not None:
                values[key].insert(0, head[key])
            if tail is not None:
                values[key].append(tail[key])
        runs.append(
            (classes[i], {k: np.asarray(v, dtype=float) for k, v in values.items()})
        )
        head, start = tail, i + 1
    return runs


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
    for kind in ("branch_point", "fold", "first_order"):
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


def _plain_log_ticks(axis, lo, hi):
    """Label a log axis with plain numbers; below 3 decades also at 2 and 5."""
    subs = (1.0, 2.0, 5.0) if hi / lo < 1e3 else (1.0,)
    axis.set_major_locator(LogLocator(base=10.0, subs=subs))
    axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    axis.set_minor_formatter(NullFormatter())


def _set_alpha_axis(ax, result, log_alpha):
    lo, hi = (float(a) for a in result.alpha_range)
    if log_alpha:
        ax.set_xscale("log")
        _plain_log_ticks(ax.xaxis, lo, hi)
    ax.set_xlim(lo, hi)
    ax.set_xlabel(r"$\alpha = \beta P / (K N)$")


# -- public figures --------------------------------------------------------------------
def plot_learning_curve(result, ax=None, path=None, *, log_alpha=True, log_error=False):
    r"""Plot the generalisation error of every branch against alpha.

    Each branch has one colour; its equilibrium parts are solid, metastable
    parts dashed and unstable parts dotted. Branch points, folds and
    first-order points carry markers on the branches they involve, and every
    change of the equilibrium state is a labelled vertical line.

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
        fig, ax = _pyplot().subplots(figsize=(8.0, 5.0), layout="constrained")
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
    ax.legend(
        handles=_legend_handles(
            result, colors, classes_seen, kinds_seen, transitions_seen
        ),
        fontsize="small",
        loc="best",
        framealpha=0.9,
    )
    return _finish(fig, path)


def plot_order_parameters(result, path=None, *, axes=None, log_alpha=True):
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

    Returns
    -------
    matplotlib.figure.Figure

    Notes
    -----
    In the site-symmetric ansatz ``R_km = R delta_km + S (1 - delta_km)`` and
    ``Q_kl = delta_kl + C (1 - delta_kl)``, so R = S on the unspecialised
    branch.
    """
    if axes is None:
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
    axes[0].legend(
        handles=_legend_handles(
            result, colors, classes_seen, kinds_seen, transitions_seen
        ),
        fontsize="x-small",
        loc="best",
        framealpha=0.9,
    )
    fig.suptitle(f"order parameters, {result.activation}, K = {result.K}")
    return _finish(fig, path)


def plot_phase_diagram(diagram, path=None, *, ax=None, log_alpha=True):
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
        Axes to draw on; a new figure is created when omitted.
    log_alpha : bool
        Logarithmic alpha axis (default True). The K axis is always
        logarithmic.

    Returns
    -------
    matplotlib.figure.Figure
    """
    if ax is None:
        fig, ax = _pyplot().subplots(figsize=(8.0, 5.5), layout="constrained")
    else:
        fig = ax.figure
    activations = list(dict.fromkeys(row.activation for row in diagram.rows))
    activations += [name for name, _ in diagram.results if name not in activations]
    extra = iter(_EXTRA_COLORS * (1 + len(activations)))
    colors = {a: ACTIVATION_COLORS.get(a) or next(extra) for a in activations}

    kinds_seen, transition_seen = set(), False
    for activation in activations:
        rows = [r for r in diagram.rows if r.activation == activation]
        series: dict = {}
        for row in rows:
            if row.kind.startswith("transition:"):
                continue
            series.setdefault((row.kind, row.branches), []).append(row)
        for (kind, _), points in series.items():
            Ks = np.array([p.K for p in points], dtype=float)
            alphas = np.array([p.alpha for p in points], dtype=float)
            order = np.argsort(Ks)
            if len(points) > 1 and len(np.unique(Ks)) == len(Ks):
                ax.plot(
                    Ks[order],
                    alphas[order],
                    color=colors[activation],
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
                color=colors[activation],
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
                markeredgecolor=colors[activation],
                markeredgewidth=1.2,
                zorder=2,
                gid=f"transition:{activation}",
            )
            transition_seen = True

    ax.set_xscale("log")
    Ks_all = sorted({row.K for row in diagram.rows} | {K for _, K in diagram.results})
    if Ks_all:
        ax.set_xlim(Ks_all[0] / 1.15, Ks_all[-1] * 1.15)
        _plain_log_ticks(ax.xaxis, Ks_all[0], Ks_all[-1])
    if log_alpha:
        ax.set_yscale("log")
        alphas = [row.alpha for row in diagram.rows if row.alpha > 0]
        if alphas:
            _plain_log_ticks(ax.yaxis, min(alphas), max(alphas))
    ax.set_xlabel("number of hidden units K")
    ax.set_ylabel(r"critical $\alpha$")
    lo, hi = (float(a) for a in diagram.alpha_range)
    ax.set_title(f"critical points for $\\alpha$ in [{lo:g}, {hi:g}]")
    ax.grid(True, which="major", alpha=0.3)

    handles = [
        Line2D([], [], color=colors[a], linewidth=2.5, label=a) for a in activations
    ]
    for kind in ("branch_point", "fold", "first_order"):
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
    ax.legend(handles=handles, fontsize="small", loc="best", framealpha=0.9)
    return _finish(fig, path)
