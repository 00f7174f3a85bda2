"""Tests of reluspec.plotting on hand-made results whose stability is known.

The result built here mimics a first-order transition with K = 3: the
unspecialised branch is the equilibrium up to the equal-free-energy point
alpha = 20, metastable up to the branch point alpha = 30 and unstable beyond.
The specialised branch leaves the branch point unstable, turns at the fold
alpha = 12, is metastable up to alpha = 20 and the equilibrium beyond. Every
expected count and junction below follows from this construction.
"""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")

import matplotlib.image
import matplotlib.pyplot as plt
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reluspec.analysis import (
    CriticalPoint,
    DiagramRow,
    LearningCurve,
    PhaseDiagram,
    SpecializationResult,
    StateBranch,
    Transition,
)
from reluspec.plotting import (
    BRANCH_COLORS,
    MARKERS,
    plot_critical_curves,
    plot_learning_curve,
    plot_order_parameters,
    plot_phase_diagram,
    stability_runs,
)

ALPHA_FOLD, ALPHA_FIRST_ORDER, ALPHA_BRANCH = 12.0, 20.0, 30.0
UNSPECIALIZED, SPECIALIZED = "unspecialized", "specialized R>S"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _unspecialized_state(alpha):
    alpha = np.asarray(alpha, dtype=float)
    r = 0.3 * alpha / (alpha + 5.0)
    return r, r, 0.2 * alpha / (alpha + 5.0), 0.4 / (1.0 + alpha / 8.0)


def _specialized_state(s, fold=ALPHA_FOLD, branch=ALPHA_BRANCH):
    """State at curve parameter s in [-1, 1]: s = -1 is the branch point, s = 0
    the fold, s = 1 lies at alpha = 60."""
    s = np.asarray(s, dtype=float)
    R0, S0, C0, error0 = _unspecialized_state(branch)
    t = s + 1.0
    alpha = np.where(
        s < 0,
        fold + (branch - fold) * s**2,
        fold + (60.0 - fold) * s**2,
    )
    return alpha, R0 + 0.5 * t, S0 - 0.1 * t, C0 - 0.05 * t, error0 - 0.08 * t


def _state(R, S, C, error):
    return {
        "R": float(R),
        "S": float(S),
        "C": float(C),
        "generalization_error": float(error),
        "free_energy": 0.0,
    }


def first_order_result(
    fold=ALPHA_FOLD, first_order=ALPHA_FIRST_ORDER, branch=ALPHA_BRANCH
) -> SpecializationResult:
    """Return the hand-made result described in the module docstring, with
    its fold, first-order point and branch point at the given alpha."""
    alpha = np.geomspace(0.5, 60.0, 80)
    R, S, C, error = _unspecialized_state(alpha)
    unspecialized = StateBranch(
        UNSPECIALIZED,
        alpha,
        R,
        S,
        C,
        error,
        np.zeros_like(alpha),
        (alpha > branch).astype(np.int64),
        alpha <= first_order,
    )

    # An even number of points, so that no point sits exactly at the fold s = 0.
    s = np.linspace(-1.0, 1.0, 40)
    s_alpha, s_R, s_S, s_C, s_error = _specialized_state(s, fold, branch)
    specialized = StateBranch(
        SPECIALIZED,
        s_alpha,
        s_R,
        s_S,
        s_C,
        s_error,
        np.zeros_like(s_alpha),
        (s < 0).astype(np.int64),
        (s > 0) & (s_alpha >= first_order),
    )

    s_first_order = np.sqrt((first_order - fold) / (60.0 - fold))
    fold_state = _state(*_specialized_state(0.0, fold, branch)[1:])
    branch_state = _state(*_specialized_state(-1.0, fold, branch)[1:])
    jump_state = _state(*_specialized_state(s_first_order, fold, branch)[1:])
    before_state = _state(*_unspecialized_state(first_order))
    points = [
        CriticalPoint(
            "fold", fold, 1e-13, (SPECIALIZED,), {SPECIALIZED: fold_state}, 0.0
        ),
        CriticalPoint(
            "first_order",
            first_order,
            1e-12,
            (UNSPECIALIZED, SPECIALIZED),
            {UNSPECIALIZED: before_state, SPECIALIZED: jump_state},
            0.0,
        ),
        CriticalPoint(
            "branch_point",
            branch,
            1e-12,
            (UNSPECIALIZED, SPECIALIZED),
            {UNSPECIALIZED: branch_state, SPECIALIZED: branch_state},
            0.0,
        ),
    ]

    jump = jump_state["generalization_error"] - before_state["generalization_error"]
    transitions = [
        Transition(
            "first_order",
            first_order,
            1e-12,
            UNSPECIALIZED,
            SPECIALIZED,
            jump,
            (fold, float("nan")),
        )
    ]

    below = alpha[alpha <= first_order]
    above = alpha[alpha > first_order]
    curve_alpha = np.concatenate([below, [first_order, first_order], above])
    names = (UNSPECIALIZED,) * (len(below) + 1) + (SPECIALIZED,) * (len(above) + 1)
    zeros = np.zeros_like(curve_alpha)
    curve = LearningCurve(curve_alpha, zeros, zeros, zeros, zeros, zeros, names)
    return SpecializationResult(
        "erf", 3, (0.5, 60.0), [unspecialized, specialized], points, transitions, curve
    )


def first_order_diagram() -> PhaseDiagram:
    """Return a diagram with a continuous (relu) and a first-order (erf) family."""
    rows = []
    for K in (2, 3, 5, 10, 20):
        alpha_relu = 2 * np.pi * (1 + 1 / K)
        rows.append(DiagramRow("relu", K, "branch_point", alpha_relu, 1e-12, "a"))
        rows.append(
            DiagramRow("relu", K, "transition:continuous", alpha_relu, 1e-12, "b")
        )
        if K >= 3:
            rows.append(DiagramRow("erf", K, "fold", 20.0 + 3 * K, 1e-12, "c"))
            rows.append(DiagramRow("erf", K, "first_order", 25.0 + 3.5 * K, 1e-12, "d"))
            rows.append(
                DiagramRow(
                    "erf", K, "transition:first_order", 25.0 + 3.5 * K, 1e-12, "e"
                )
            )
    rows.sort(key=lambda r: (r.activation, r.K, r.alpha))
    return PhaseDiagram(rows, {}, (0.5, 100.0))


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def _branch_lines(ax):
    return [line for line in ax.lines if str(line.get_gid()).startswith("branch:")]


def _count_styles(lines):
    counts = {"-": 0, "--": 0, ":": 0}
    for line in lines:
        style = line.get_linestyle()
        if style in counts:
            counts[style] += 1
    return counts


def _assert_png(path):
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    image = matplotlib.image.imread(path)
    assert image.shape[0] > 100
    assert image.shape[1] > 100
    # A blank canvas has one colour; a drawn figure has many.
    assert np.ptp(image[..., :3]) > 0.5


# -- stability runs --------------------------------------------------------------------
def test_runs_follow_stability_classes():
    result = first_order_result()
    classes = {
        b.name: [c for c, _ in stability_runs(b, result.critical_points)]
        for b in result.branches
    }
    assert classes[UNSPECIALIZED] == ["equilibrium", "metastable", "unstable"]
    assert classes[SPECIALIZED] == ["unstable", "metastable", "equilibrium"]


def test_runs_meet_at_critical_points():
    result = first_order_result()
    runs = stability_runs(result.branch(SPECIALIZED), result.critical_points)
    (_, unstable), (_, metastable), (_, equilibrium) = runs
    # The fold lies between two grid points (s = +-1/39), so it must come
    # from the critical point, not from a grid point or a midpoint.
    assert unstable["alpha"][-1] == ALPHA_FOLD
    assert metastable["alpha"][0] == ALPHA_FOLD
    fold_error = _specialized_state(0.0)[4]
    assert unstable["generalization_error"][-1] == pytest.approx(fold_error, abs=1e-15)
    assert metastable["alpha"][-1] == ALPHA_FIRST_ORDER
    assert equilibrium["alpha"][0] == ALPHA_FIRST_ORDER

    runs = stability_runs(result.branch(UNSPECIALIZED), result.critical_points)
    (_, equilibrium), (_, metastable), (_, unstable) = runs
    assert equilibrium["alpha"][-1] == ALPHA_FIRST_ORDER
    assert metastable["alpha"][-1] == ALPHA_BRANCH
    assert unstable["alpha"][0] == ALPHA_BRANCH


def test_runs_keep_every_point_in_its_class():
    result = first_order_result()
    for branch in result.branches:
        runs = stability_runs(branch, result.critical_points)
        interiors = []
        for index, (stability, values) in enumerate(runs):
            start = 0 if index == 0 else 1
            stop = len(values["alpha"]) if index == len(runs) - 1 else -1
            interiors.append((stability, values["alpha"][start:stop]))
        joined = np.concatenate([alpha for _, alpha in interiors])
        np.testing.assert_array_equal(joined, branch.alpha)
        offset = 0
        for stability, alpha in interiors:
            n_unstable = branch.n_unstable[offset : offset + len(alpha)]
            equilibrium = branch.equilibrium[offset : offset + len(alpha)]
            if stability == "unstable":
                assert np.all(n_unstable > 0)
            else:
                assert np.all(n_unstable == 0)
                assert np.all(equilibrium == (stability == "equilibrium"))
            offset += len(alpha)


def test_runs_use_midpoint_without_critical_point():
    alpha = np.array([1.0, 2.0, 3.0, 4.0])
    values = np.array([0.1, 0.2, 0.3, 0.4])
    branch = StateBranch(
        "specialized R>S",
        alpha,
        values,
        values,
        values,
        values,
        values,
        np.array([0, 0, 1, 1]),
        np.zeros(4, dtype=bool),
    )
    (first, a), (second, b) = stability_runs(branch)
    assert (first, second) == ("metastable", "unstable")
    assert a["alpha"].tolist() == [1.0, 2.0, 2.5]
    assert b["alpha"].tolist() == [2.5, 3.0, 4.0]
    assert a["generalization_error"][-1] == pytest.approx(0.25, abs=1e-15)


def _line_branch(alpha, n_unstable, equilibrium, name=SPECIALIZED):
    """Return a branch whose state is R = S = C = log(alpha) / 10, a straight
    line in the coordinates (log alpha, R, S, C) that the runs use."""
    alpha = np.asarray(alpha, dtype=float)
    value = 0.1 * np.log(alpha)
    return StateBranch(
        name,
        alpha,
        value,
        value,
        value,
        value,
        value,
        np.asarray(n_unstable),
        np.asarray(equilibrium, dtype=bool),
    )


def _point_on_line(kind, alpha, names=(SPECIALIZED,)):
    value = 0.1 * np.log(alpha)
    state = _state(value, value, value, value)
    return CriticalPoint(kind, alpha, 0.0, names, {n: state for n in names}, 0.0)


def test_runs_with_two_points_in_one_interval():
    # Sampled too coarsely, the branch jumps from equilibrium to unstable
    # between alpha = 2 and 3. The first-order point makes it metastable and
    # the branch point unstable, so the piece between them is metastable.
    branch = _line_branch([1.0, 2.0, 3.0, 4.0], [0, 0, 1, 1], [1, 1, 0, 0])
    points = [_point_on_line("branch_point", 2.7), _point_on_line("first_order", 2.3)]
    runs = stability_runs(branch, points, keys=("alpha",))
    assert [stability for stability, _ in runs] == [
        "equilibrium",
        "metastable",
        "unstable",
    ]
    assert runs[0][1]["alpha"].tolist() == [1.0, 2.0, 2.3]
    assert runs[1][1]["alpha"].tolist() == [2.3, 2.7]
    assert runs[2][1]["alpha"].tolist() == [2.7, 3.0, 4.0]


def test_runs_skip_fold_of_previous_interval():
    # The branch turns at the fold s = 0 (alpha = 5, R = 0); the third point
    # lies just past it, and the first-order point at s = 0.3 lies in the
    # next interval. The fold projects outside that interval, so it must not
    # end the metastable run a second time.
    s = np.array([-1.0, -0.5, 0.01, 0.6, 1.0])
    alpha = 5.0 + s**2
    zeros = np.zeros_like(s)
    branch = StateBranch(
        SPECIALIZED,
        alpha,
        s,
        zeros,
        zeros,
        s,
        zeros,
        np.array([1, 1, 0, 0, 0]),
        np.array([False, False, False, True, True]),
    )

    fold = CriticalPoint(
        "fold", 5.0, 0.0, (SPECIALIZED,), {SPECIALIZED: _state(0, 0, 0, 0)}, 0.0
    )
    first_order = CriticalPoint(
        "first_order",
        5.09,
        0.0,
        (SPECIALIZED,),
        {SPECIALIZED: _state(0.3, 0, 0, 0.3)},
        0.0,
    )

    runs = stability_runs(branch, [first_order, fold], keys=("alpha", "R"))
    assert [stability for stability, _ in runs] == [
        "unstable",
        "metastable",
        "equilibrium",
    ]
    assert runs[0][1]["R"].tolist() == [-1.0, -0.5, 0.0]
    assert runs[1][1]["R"].tolist() == [0.0, 0.01, 0.3]
    assert runs[2][1]["R"].tolist() == [0.3, 0.6, 1.0]


def test_runs_drop_point_on_branch_point():
    # The first point sits on the branch point, where the vanishing
    # eigenvalue makes n_unstable = 0 by rounding; it must not form a run.
    branch = _line_branch([3.0, 3.0, 3.5, 4.0], [0, 1, 1, 1], [0, 0, 0, 0])
    points = [_point_on_line("branch_point", 3.0)]
    runs = stability_runs(branch, points, keys=("alpha",))
    assert len(runs) == 1
    assert runs[0][0] == "unstable"
    assert runs[0][1]["alpha"].tolist() == [3.0, 3.5, 4.0]


def test_runs_of_empty_branch():
    empty = np.zeros(0)
    branch = StateBranch(
        UNSPECIALIZED,
        empty,
        empty,
        empty,
        empty,
        empty,
        empty,
        empty.astype(int),
        empty > 0,
    )
    assert stability_runs(branch) == []


# -- learning curve --------------------------------------------------------------------
def test_learning_curve_line_styles():
    result = first_order_result()
    fig = plot_learning_curve(result)
    ax = fig.axes[0]
    lines = _branch_lines(ax)
    assert _count_styles(lines) == {"-": 2, "--": 2, ":": 2}
    for name in (UNSPECIALIZED, SPECIALIZED):
        colour = matplotlib.colors.to_rgba(BRANCH_COLORS[name])
        own = [
            line
            for line in lines
            if matplotlib.colors.to_rgba(line.get_color()) == colour
        ]
        assert sorted(line.get_linestyle() for line in own) == ["-", "--", ":"]
    # Every Line2D on the axes is a branch run, a marker or a transition line.
    others = [line for line in ax.lines if line not in lines]
    assert all(line.get_linestyle() in ("None", "-.") for line in others)


def test_learning_curve_marks_points_and_transitions():
    result = first_order_result()
    ax = plot_learning_curve(result).axes[0]
    gids = [str(line.get_gid()) for line in ax.lines]
    # The branch point is one state shared by both branches (one marker);
    # the first-order point has two states with different errors.
    assert gids.count("critical:fold") == 1
    assert gids.count("critical:branch_point") == 1
    assert gids.count("critical:first_order") == 2
    markers = {
        str(line.get_gid()): line.get_marker()
        for line in ax.lines
        if str(line.get_gid()).startswith("critical:")
    }
    drawn_kinds = ("fold", "branch_point", "first_order")
    assert markers == {f"critical:{kind}": MARKERS[kind] for kind in drawn_kinds}
    transitions = [
        line for line in ax.lines if line.get_gid() == "transition:first_order"
    ]
    assert len(transitions) == 1
    assert transitions[0].get_xdata()[0] == ALPHA_FIRST_ORDER
    texts = [text.get_text() for text in ax.texts]
    assert any(text.startswith("first-order transition") for text in texts)
    legend = [text.get_text() for text in ax.get_legend().get_texts()]
    assert UNSPECIALIZED in legend
    assert "first-order transition" in legend


def test_learning_curve_axes_and_png(tmp_path):
    path = tmp_path / "curve.png"
    fig = plot_learning_curve(first_order_result(), path=path)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    assert ax.get_yscale() == "linear"
    assert ax.get_xlim() == pytest.approx((0.5, 60.0))
    _assert_png(path)


def test_learning_curve_on_given_axes():
    fig, (left, right) = plt.subplots(1, 2)
    returned = plot_learning_curve(first_order_result(), ax=right, log_alpha=False)
    assert returned is fig
    assert len(_branch_lines(right)) == 6
    assert len(left.lines) == 0
    assert right.get_xscale() == "linear"


def test_learning_curve_after_json_round_trip(tmp_path):
    result = first_order_result()
    path = tmp_path / "result.json"
    result.to_json(path)
    loaded = SpecializationResult.from_json(path)
    direct = _branch_lines(plot_learning_curve(result).axes[0])
    reloaded = _branch_lines(plot_learning_curve(loaded).axes[0])
    assert len(direct) == len(reloaded)
    for a, b in zip(direct, reloaded, strict=True):
        assert a.get_linestyle() == b.get_linestyle()
        np.testing.assert_array_equal(a.get_xdata(), b.get_xdata())
        np.testing.assert_array_equal(a.get_ydata(), b.get_ydata())


def test_learning_curve_without_special_points():
    result = first_order_result()
    branch = result.branch(UNSPECIALIZED)
    alone = StateBranch(
        UNSPECIALIZED,
        branch.alpha,
        branch.R,
        branch.S,
        branch.C,
        branch.generalization_error,
        branch.free_energy,
        np.zeros_like(branch.n_unstable),
        np.ones_like(branch.equilibrium),
    )
    plain = SpecializationResult(
        "relu", 2, (0.5, 60.0), [alone], [], [], result.learning_curve
    )
    ax = plot_learning_curve(plain).axes[0]
    assert _count_styles(_branch_lines(ax)) == {"-": 1, "--": 0, ":": 0}
    assert len(ax.lines) == 1


# -- order parameters ------------------------------------------------------------------
def test_order_parameters_panels(tmp_path):
    path = tmp_path / "order.png"
    result = first_order_result()
    fig = plot_order_parameters(result, path=path)
    assert len(fig.axes) == 3
    for ax, key in zip(fig.axes, ("R", "S", "C"), strict=True):
        lines = _branch_lines(ax)
        assert _count_styles(lines) == {"-": 2, "--": 2, ":": 2}
        assert ax.get_xscale() == "log"
        assert ax.get_ylabel().startswith(f"${key}$")
        # The equilibrium run of the unspecialised branch ends at the
        # first-order point, with that point's value of the order parameter.
        first = next(
            line
            for line in lines
            if line.get_gid() == f"branch:{UNSPECIALIZED}:equilibrium"
        )
        expected = result.critical_points[1].states[UNSPECIALIZED][key]
        assert first.get_xdata()[-1] == ALPHA_FIRST_ORDER
        assert first.get_ydata()[-1] == expected
    _assert_png(path)


def test_order_parameters_rejects_wrong_axes():
    fig, axes = plt.subplots(1, 2)
    with pytest.raises(ValueError, match="three Axes"):
        plot_order_parameters(first_order_result(), axes=axes)


# -- phase diagram ---------------------------------------------------------------------
def _check_diagram_lines(ax, diagram, activation):
    for kind in MARKERS:
        rows = diagram.select(activation, kind)
        lines = [
            line
            for line in ax.lines
            if line.get_gid() == f"critical:{activation}:{kind}"
        ]
        if not rows:
            assert lines == []
            continue
        (line,) = lines
        assert line.get_marker() == MARKERS[kind]
        assert sorted(line.get_xdata()) == sorted(row.K for row in rows)
        assert sorted(line.get_ydata()) == sorted(row.alpha for row in rows)
    (ring,) = [
        line for line in ax.lines if line.get_gid() == f"transition:{activation}"
    ]
    expected = [
        row
        for row in diagram.rows
        if row.activation == activation and row.kind.startswith("transition:")
    ]
    assert sorted(ring.get_xdata()) == sorted(row.K for row in expected)
    assert sorted(ring.get_ydata()) == sorted(row.alpha for row in expected)


def _colours_of(ax, activation):
    return {
        matplotlib.colors.to_rgba(line.get_color())
        for line in ax.lines
        if str(line.get_gid()).startswith(f"critical:{activation}:")
    }


def test_phase_diagram_panels(tmp_path):
    path = tmp_path / "diagram.png"
    diagram = first_order_diagram()
    fig = plot_phase_diagram(diagram, path=path)
    # Rows are sorted by activation, so erf comes first.
    erf_axes, relu_axes = fig.axes
    for ax, activation in ((erf_axes, "erf"), (relu_axes, "relu")):
        assert ax.get_xscale() == "log"
        assert ax.get_ylabel().startswith(activation)
        _check_diagram_lines(ax, diagram, activation)
    assert not any("relu" in str(line.get_gid()) for line in erf_axes.lines)
    assert len(_colours_of(relu_axes, "relu")) == 1
    assert len(_colours_of(erf_axes, "erf")) == 1
    assert _colours_of(relu_axes, "relu") != _colours_of(erf_axes, "erf")
    _assert_png(path)


def test_phase_diagram_single_axes():
    diagram = first_order_diagram()
    fig, ax = plt.subplots()
    assert plot_phase_diagram(diagram, ax=ax, log_alpha=True) is fig
    assert fig.axes == [ax]
    assert ax.get_yscale() == "log"
    for activation in ("relu", "erf"):
        _check_diagram_lines(ax, diagram, activation)
    combined = plot_phase_diagram(diagram, separate=False)
    assert len(combined.axes) == 1


def test_phase_diagram_after_json_round_trip(tmp_path):
    diagram = first_order_diagram()
    path = tmp_path / "diagram.json"
    diagram.to_json(path)
    loaded = PhaseDiagram.from_json(path)
    fig = plot_phase_diagram(loaded)
    markers = [
        line
        for ax in fig.axes
        for line in ax.lines
        if str(line.get_gid()).startswith("critical:")
    ]
    assert sum(len(line.get_xdata()) for line in markers) == sum(
        1 for row in diagram.rows if not row.kind.startswith("transition:")
    )


# -- zoom inset ------------------------------------------------------------------------
# No grid point of the unspecialised branch lies in [20.2, 20.4]: its
# neighbours are 20.156 and 21.416.
CLOSE_POINTS = {"fold": 20.2, "first_order": 20.25, "branch": 20.4}


def _zoom_insets(ax):
    return [child for child in ax.child_axes if child.get_gid() == "zoom"]


def test_zoom_on_close_critical_points():
    result = first_order_result(**CLOSE_POINTS)
    ax = plot_learning_curve(result).axes[0]
    (inset,) = _zoom_insets(ax)
    low, high = inset.get_xlim()
    # The window extends half the spread of the points (0.2) beyond them.
    assert low == pytest.approx(20.2 - 0.1, rel=1e-12)
    assert high == pytest.approx(20.4 + 0.1, rel=1e-12)
    assert inset.get_xscale() == "linear"
    assert _count_styles(_branch_lines(inset)) == {"-": 2, "--": 2, ":": 2}
    gids = [str(line.get_gid()) for line in inset.lines]
    assert gids.count("critical:fold") == 1
    assert gids.count("critical:first_order") == 2
    assert gids.count("critical:branch_point") == 1
    # Every marker and the branch lines inside the window are within the
    # inset's y range.
    y_low, y_high = inset.get_ylim()
    for point in result.critical_points:
        for state in point.states.values():
            assert y_low < state["generalization_error"] < y_high


def test_zoom_keeps_metastable_piece():
    # No grid point of the unspecialised branch lies between the first-order
    # point (20.25) and the branch point (20.4): the metastable run must still
    # connect exactly these two points.
    result = first_order_result(**CLOSE_POINTS)
    ax = plot_learning_curve(result).axes[0]
    (line,) = [
        line
        for line in _branch_lines(ax)
        if line.get_gid() == f"branch:{UNSPECIALIZED}:metastable"
    ]
    assert line.get_xdata().tolist() == [20.25, 20.4]


def test_zoom_absent_or_disabled():
    wide = plot_learning_curve(first_order_result()).axes[0]
    assert _zoom_insets(wide) == []
    close = first_order_result(**CLOSE_POINTS)
    assert _zoom_insets(plot_learning_curve(close, zoom=False).axes[0]) == []


def test_zoom_in_order_parameters(tmp_path):
    path = tmp_path / "order.png"
    fig = plot_order_parameters(first_order_result(**CLOSE_POINTS), path=path)
    for ax in fig.axes[:3]:
        (inset,) = _zoom_insets(ax)
        assert _count_styles(_branch_lines(inset)) == {"-": 2, "--": 2, ":": 2}
    _assert_png(path)


def test_phase_diagram_skips_infinite_K(tmp_path):
    """Rows at K = infinity have no place on the log K axis; the plot draws
    the finite rows and no point at infinity."""
    import math

    from reluspec.analysis import phase_diagram

    diagram = phase_diagram("relu", [2, 3, math.inf], (1.0, 30.0), progress=False)
    assert any(math.isinf(row.K) for row in diagram.rows)
    figure = plot_phase_diagram(diagram, path=tmp_path / "diagram.png")
    for ax in figure.axes:
        for line in ax.lines:
            assert np.all(np.isfinite(np.asarray(line.get_xdata(), dtype=float)))
    _assert_png(tmp_path / "diagram.png")


def test_phase_diagram_axis_fits_transition_structure():
    """A symmetry-breaking point far from the branch points does not set the
    alpha axis; the panel names it instead. One inside the range is drawn."""
    diagram = first_order_diagram()
    far = DiagramRow("relu", 5, "symmetry_breaking", 44.3, 1e-12, "specialized R<S")
    near = DiagramRow("relu", 3, "symmetry_breaking", 7.5, 1e-12, "specialized R<S")
    rows = sorted(
        diagram.rows + [far, near], key=lambda r: (r.activation, r.K, r.alpha)
    )
    fig = plot_phase_diagram(PhaseDiagram(rows, {}, (0.5, 100.0)))
    _, relu_axes = fig.axes
    relu_alphas = [2 * np.pi * (1 + 1 / K) for K in (2, 3, 5, 10, 20)]
    low, high = relu_axes.get_ylim()
    assert low < min(relu_alphas)
    assert max(relu_alphas) < high < 44.3
    texts = [t.get_text() for t in relu_axes.texts]
    assert texts == ["symmetry breaking off the scale at alpha: K = 5 (44.3)"]
    plt.close(fig)


# -- tick labels -----------------------------------------------------------------------
def _visible_tick_labels(axis):
    """Return ``(location, text, bbox)`` of the labelled major ticks in the view,
    after a draw, sorted by location."""
    figure = axis.figure
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    low, high = sorted(axis.get_view_interval())
    labels = []
    for tick in axis.get_major_ticks():
        location = tick.get_loc()
        text = tick.label1.get_text()
        if not (low * (1 - 1e-9) <= location <= high * (1 + 1e-9)) or not text:
            continue
        labels.append((location, text, tick.label1.get_window_extent(renderer)))
    return sorted(labels, key=lambda label: label[0])


def _assert_labels_apart(labels):
    for (_, left, left_box), (_, right, right_box) in zip(
        labels, labels[1:], strict=False
    ):
        assert not left_box.overlaps(right_box), (left, right)


def _wide_result(alpha_range):
    result = first_order_result()
    return SpecializationResult(
        result.activation,
        result.K,
        alpha_range,
        result.branches,
        result.critical_points,
        result.transitions,
        result.learning_curve,
    )


def test_learning_curve_wide_range_ticks():
    ax = plot_learning_curve(_wide_result((1e-8, 1e8))).axes[0]
    labels = _visible_tick_labels(ax.xaxis)
    _assert_labels_apart(labels)
    # 16 decades give at most 17 labelled powers of ten, at least every
    # fourth one on a 10-inch figure, with one stride between them.
    assert 5 <= len(labels) <= 17
    exponents = np.log10([location for location, _, _ in labels])
    np.testing.assert_allclose(exponents, np.round(exponents), atol=1e-12)
    assert len(set(np.round(np.diff(exponents)).tolist())) == 1
    assert labels[0][1] == "$10^{-8}$"


def test_order_parameters_wide_range_ticks():
    fig = plot_order_parameters(_wide_result((1e-8, 1e8)))
    for ax in fig.axes[:3]:
        labels = _visible_tick_labels(ax.xaxis)
        _assert_labels_apart(labels)
        assert 3 <= len(labels) <= 17


def test_narrow_range_keeps_plain_labels():
    ax = plot_learning_curve(first_order_result()).axes[0]
    texts = [text for _, text, _ in _visible_tick_labels(ax.xaxis)]
    assert texts == ["0.5", "1", "2", "5", "10", "20", "50"]


@settings(max_examples=15)
@given(
    low=st.floats(min_value=-8.0, max_value=7.9),
    decades=st.floats(min_value=0.02, max_value=16.0),
    width=st.floats(min_value=2.0, max_value=12.0),
)
def test_alpha_tick_labels_never_overlap(low, decades, width):
    high = min(low + decades, 8.0)
    fig, ax = plt.subplots(figsize=(width, 3.0))
    try:
        result = _wide_result((10.0**low, 10.0**high))
        plot_learning_curve(result, ax=ax, zoom=False)
        labels = _visible_tick_labels(ax.xaxis)
        _assert_labels_apart(labels)
        assert len(labels) >= 1
        # A label is at least as wide as one digit at 10 pt (6 points).
        assert len(labels) <= ax.bbox.width * 72.0 / fig.dpi / 6.0
    finally:
        plt.close(fig)


def _diagram_of(Ks, activation="relu"):
    rows = [
        DiagramRow(activation, K, "branch_point", 2 * np.pi * (1 + 1 / K), 1e-12, "")
        for K in Ks
    ]
    return PhaseDiagram(rows, {}, (0.5, 60.0))


def test_phase_diagram_single_K_axis():
    ax = plot_phase_diagram(_diagram_of([4])).axes[0]
    labels = _visible_tick_labels(ax.xaxis)
    locations = [location for location, _, _ in labels]
    assert locations == [3.0, 4.0, 5.0]
    assert [text for _, text, _ in labels] == ["3", "4", "5"]
    low, high = ax.get_xlim()
    # The single K sits in the middle of the log axis, which spans a factor 2.
    assert np.sqrt(low * high) == pytest.approx(4.0, rel=1e-12)
    assert high / low == pytest.approx(2.0, rel=1e-12)


@settings(max_examples=15)
@given(
    Ks=st.lists(st.integers(2, 100_000), min_size=1, max_size=12, unique=True),
    width=st.floats(min_value=3.0, max_value=12.0),
)
def test_K_ticks_are_readable_integers(Ks, width):
    fig, ax = plt.subplots(figsize=(width, 3.0))
    try:
        plot_phase_diagram(_diagram_of(sorted(Ks)), ax=ax)
        labels = _visible_tick_labels(ax.xaxis)
        assert len(labels) >= 1
        for location, text, _ in labels:
            assert float(location).is_integer()
            assert text == str(int(location))
        _assert_labels_apart(labels)
        low, high = ax.get_xlim()
        assert low < min(Ks)
        assert max(Ks) < high
    finally:
        plt.close(fig)


# -- titles ----------------------------------------------------------------------------
def _assert_title_centred(ax):
    fig = ax.figure
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    title = ax.title.get_window_extent(renderer)
    frame = ax.get_window_extent(renderer)
    assert ax.get_title()
    # Half a pixel: the title's centre is placed at the axes centre, and
    # the text extent is rounded to whole pixels.
    assert 0.5 * (title.x0 + title.x1) == pytest.approx(
        0.5 * (frame.x0 + frame.x1), abs=0.5
    )


def test_phase_diagram_title_over_axes():
    separate = plot_phase_diagram(first_order_diagram())
    assert separate.get_suptitle() == ""
    _assert_title_centred(separate.axes[0])
    combined = plot_phase_diagram(first_order_diagram(), separate=False)
    _assert_title_centred(combined.axes[0])


# -- critical curves against 1/K -------------------------------------------------------
@dataclass
class _Curve:
    """The attributes of a CriticalCurve that plot_critical_curves reads."""

    activation: str
    kind: str
    alpha_exponent: int
    eps: np.ndarray
    alpha_scaled: np.ndarray

    @property
    def alpha(self):
        with np.errstate(divide="ignore", invalid="ignore"):
            return self.alpha_scaled / self.eps**self.alpha_exponent

    @property
    def limit(self):
        return float(self.alpha_scaled[0])


EPS = np.linspace(0.0, 0.5, 26)
# alpha = 2 pi (1 + eps), 61 - 40 eps, 69 - 25 eps and, for the erf branch
# point, K times 4 pi (1 + eps): the limits are 2 pi, 61, 69 and alpha/K -> 4 pi.
ERF_BRANCH_SCALED = 4 * np.pi * (1 + EPS)


def _curves():
    return [
        _Curve("relu", "branch_point", 0, EPS, 2 * np.pi * (1 + EPS)),
        _Curve("erf", "branch_point", 1, EPS, ERF_BRANCH_SCALED),
        _Curve("erf", "fold", 0, EPS, 61.0 - 40.0 * EPS),
        _Curve("erf", "first_order", 0, EPS, 69.0 - 25.0 * EPS),
    ]


def _finite_rows():
    rows = []
    for K in (2, 4, 10):
        rows.append(DiagramRow("erf", K, "fold", 61.0 - 40.0 / K, 1e-12, "f"))
        branch_point = 4 * np.pi * (K + 1)
        rows.append(DiagramRow("erf", K, "branch_point", branch_point, 1e-12, "b"))
    return rows


def _legend_texts(ax):
    return [text.get_text() for text in ax.get_legend().get_texts()]


def _line(ax, gid):
    (line,) = [line for line in ax.lines if line.get_gid() == gid]
    return line


def test_critical_curves_markers():
    diagram = PhaseDiagram(_finite_rows(), {}, (0.5, 100.0))
    fig = plot_critical_curves(_curves(), diagram, alpha_max=100.0)
    relu_axes, erf_axes = fig.axes
    assert relu_axes.get_title() == "relu"
    assert erf_axes.get_title() == "erf"
    finite = _line(erf_axes, "finite:erf:fold")
    order = np.argsort(finite.get_xdata())
    np.testing.assert_allclose(finite.get_xdata()[order], [0.1, 0.25, 0.5])
    np.testing.assert_allclose(finite.get_ydata()[order], [57.0, 51.0, 41.0])
    assert finite.get_markerfacecolor() != "none"
    fold = _line(erf_axes, "limit:erf:fold")
    assert fold.get_xdata().tolist() == [0.0]
    assert fold.get_ydata().tolist() == [61.0]
    assert fold.get_markerfacecolor() == "none"
    limit = _line(relu_axes, "limit:relu:branch_point")
    assert limit.get_ydata().tolist() == [2 * np.pi]
    # The erf branch point grows like K: no marker at 1/K = 0, and the
    # points above alpha_max (K = 10 at alpha = 138) are cut.
    gids = [line.get_gid() for line in erf_axes.lines]
    assert "limit:erf:branch_point" not in gids
    branch = _line(erf_axes, "finite:erf:branch_point")
    np.testing.assert_allclose(sorted(branch.get_xdata()), [0.25, 0.5])
    curve = _line(erf_axes, "curve:erf:branch_point")
    assert np.max(curve.get_ydata()) <= 100.0


def test_critical_curves_legend_explains_markers():
    diagram = PhaseDiagram(_finite_rows(), {}, (0.5, 100.0))
    fig = plot_critical_curves(_curves(), diagram, alpha_max=100.0)
    _, erf_axes = fig.axes
    texts = _legend_texts(erf_axes)
    assert "filled: solved at finite K" in texts
    assert "hollow: $K \\to \\infty$ limit (at $1/K = 0$)" in texts
    note = f"branch point: $\\alpha/K \\to {4 * np.pi:.6g}$ as $K \\to \\infty$"
    assert note in texts
    assert "12.5664" in note


def test_critical_curves_notes_cover_no_data():
    fig = plot_critical_curves(_curves(), alpha_max=100.0)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    for ax in fig.axes:
        assert len(ax.texts) == 0
        legend = ax.get_legend().get_window_extent(renderer)
        frame = ax.get_window_extent(renderer)
        assert legend.x0 >= frame.x1


def test_critical_curves_limit_above_axis():
    fig = plot_critical_curves(_curves()[2:], alpha_max=65.0)
    (ax,) = fig.axes
    assert _line(ax, "limit:erf:fold").get_ydata().tolist() == [61.0]
    assert not any(line.get_gid() == "limit:erf:first_order" for line in ax.lines)
    texts = _legend_texts(ax)
    note = (
        "first-order point (equal F) at $K = \\infty$: $\\alpha$ = 69, "
        "above the axis"
    )
    assert note in texts


def test_critical_curves_from_limit_rows(tmp_path):
    from reluspec.analysis.diagram import limit_rows

    rows = limit_rows("erf") + _finite_rows()
    path = tmp_path / "limit.png"
    fig = plot_critical_curves([], PhaseDiagram(rows, {}, (0.5, 100.0)), path=path)
    (ax,) = fig.axes
    # The fold and the equal-F point of erf have finite K = infinity rows,
    # drawn at 1/K = 0. The branch point has alpha = inf and gets a note.
    at_infinity = {r.kind: r.alpha for r in rows if r.K == float("inf")}
    for kind in ("fold", "first_order"):
        line = _line(ax, f"limit:erf:{kind}")
        assert line.get_xdata().tolist() == [0.0]
        assert line.get_ydata().tolist() == [at_infinity[kind]]
    assert at_infinity["branch_point"] == float("inf")
    texts = _legend_texts(ax)
    assert "branch point: $\\alpha \\to \\infty$ as $K \\to \\infty$" in texts
    assert "filled: solved at finite K" in texts
    _assert_png(path)


def test_critical_curves_on_shared_axes():
    fig, ax = plt.subplots()
    assert plot_critical_curves(_curves(), ax=ax) is fig
    assert _line(ax, "curve:relu:branch_point").get_linestyle() == "-"
    assert _line(ax, "curve:erf:fold").get_linestyle() == "--"
    texts = _legend_texts(ax)
    assert "relu" in texts
    assert "erf" in texts
    note = f"erf, branch point: $\\alpha/K \\to {4 * np.pi:.6g}$ as $K \\to \\infty$"
    assert note in texts
    assert ax.get_title() == "relu, erf"


def test_critical_curves_rejects_bad_input():
    with pytest.raises(ValueError, match="alpha_max = -1.0 is invalid"):
        plot_critical_curves(_curves(), alpha_max=-1.0)
    with pytest.raises(ValueError, match="nothing to plot"):
        plot_critical_curves([], PhaseDiagram([], {}, (0.5, 60.0)))
