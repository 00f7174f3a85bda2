"""Tests of reluspec.plotting on hand-made results whose stability is known.

The result built here mimics a first-order transition with K = 3: the
unspecialised branch is the equilibrium up to the equal-free-energy point
alpha = 20, metastable up to the branch point alpha = 30 and unstable beyond.
The specialised branch leaves the branch point unstable, turns at the fold
alpha = 12, is metastable up to alpha = 20 and the equilibrium beyond. Every
expected count and junction below follows from this construction.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.image
import matplotlib.pyplot as plt
import numpy as np
import pytest

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
