"""Tests of phase diagrams: parallel solves and their log records."""

import csv
import logging
import math

import pytest

import reluspec as rs
from reluspec.analysis import diagram as diagram_module
from reluspec.analysis.problem import SpecializationProblem


def test_parallel_diagram_equals_serial():
    """Solves are deterministic, so two worker processes give the rows and
    results of one process exactly."""
    arguments = (["relu", "erf"], [2, 3], (1.0, 40.0))
    serial = rs.phase_diagram(*arguments, progress=False, workers=1)
    parallel = rs.phase_diagram(*arguments, progress=False, workers=2)
    assert parallel.rows == serial.rows
    assert list(parallel.results) == list(serial.results)
    for key, result in serial.results.items():
        assert parallel.results[key].to_json() == result.to_json()


@pytest.mark.parametrize("workers", [-1, 1.5, True, "2"])
def test_diagram_rejects_invalid_workers(workers):
    with pytest.raises(ValueError, match=r"workers = .* is invalid: .* processes >= 1"):
        rs.phase_diagram(["relu"], [3], progress=False, workers=workers)


def test_diagram_checks_every_K_before_solving(monkeypatch):
    def no_solve(*args, **kwargs):
        raise AssertionError("a solve started before K was checked")

    monkeypatch.setattr(diagram_module, "solve", no_solve)
    with pytest.raises(ValueError, match="K = 1 is invalid"):
        rs.phase_diagram(["relu"], [3, 1], progress=False)


def test_worker_returns_formatted_records():
    """A worker hands back its log records with the message already
    formatted, so that they pickle whatever their arguments were."""
    problem = SpecializationProblem("relu", 2)
    outcome, records = diagram_module._solve_in_worker(
        problem, (1.0, 10.0), None, logging.INFO
    )
    assert isinstance(outcome, rs.SpecializationResult)
    messages = [record.msg for record in records]
    assert any(m.startswith("solving SpecializationProblem(") for m in messages)
    assert all(record.args is None for record in records)
    assert logging.getLogger("reluspec").propagate


def test_worker_reports_failure_as_text(monkeypatch):
    def failing(problem, alpha, options=None):
        raise FloatingPointError("overflow in the entropy")

    monkeypatch.setattr(diagram_module, "solve", failing)
    outcome = diagram_module._solve_one(SpecializationProblem("erf", 3), (1, 2), None)
    assert outcome == "FloatingPointError: overflow in the entropy"
    diagram = rs.phase_diagram(["erf"], [3, math.inf], progress=False)
    assert diagram.failures == {("erf", 3): outcome}


def test_csv_writes_plain_numbers():
    """Every alpha and error in the CSV parses as a float: numpy scalars are
    written as numbers, not as their repr."""
    diagram = rs.phase_diagram(["erf"], [3], (1.0, 60.0), progress=False)
    lines = diagram.to_csv().splitlines()
    header = lines[0].split(",")
    columns = [header.index("alpha"), header.index("alpha_error")]
    for line in lines[1:]:
        fields = next(csv.reader([line]))
        for column in columns:
            assert math.isfinite(float(fields[column]))
    assert "np.float64" not in diagram.to_csv()


def test_diagram_checks_alpha_before_solving(monkeypatch):
    def no_solve(*args, **kwargs):
        raise AssertionError("a solve started before alpha was checked")

    monkeypatch.setattr(diagram_module, "solve", no_solve)
    with pytest.raises(ValueError, match=r"alpha range \(5.0, 1.0\) is invalid"):
        rs.phase_diagram(["relu"], [3], (5.0, 1.0), progress=False)


def test_diagram_solves_repeated_K_once(monkeypatch):
    calls = []

    def counting_solve(problem, alpha, options=None):
        calls.append((problem.activation.name, problem.K))
        return rs.solve(problem, alpha, options=options)

    monkeypatch.setattr(diagram_module, "solve", counting_solve)
    diagram = rs.phase_diagram(
        ["erf", "relu", "erf"], [3, 2, 3], (1.0, 40.0), progress=False
    )
    assert calls == [("erf", 3), ("erf", 2), ("relu", 3), ("relu", 2)]
    assert [r.activation for r in diagram.rows] == sorted(
        (r.activation for r in diagram.rows), key=["erf", "relu"].index
    )
    assert diagram.rows[0].activation == "erf"


@pytest.mark.parametrize("K", ["2-4", 2.5, True, None])
def test_diagram_rejects_invalid_K_values(K):
    with pytest.raises(ValueError, match="Ks must be integers >= 2 or math.inf"):
        rs.phase_diagram(["relu"], [3, K], progress=False)
