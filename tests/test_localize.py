"""Localisation: each error structure is recognised and said in words; noise is not."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given

from examples.mistakes import MISTAKES
from examples.naive_conv import layer as naive_layer
from gradcheck.explain.heatmap import text_heatmap
from gradcheck.explain.localize import DETECTORS, localize, reached
from gradcheck.formulas.conv import conv_backward
from gradcheck.geometry.problem import ConvProblem
from gradcheck.geometry.spec import ConvSpec
from gradcheck.judge.bounds import analytic_bounds
from gradcheck.strategies import conv_problems


def _problem(x_shape, w_shape, *, seed=0, **geometry) -> ConvProblem:
    spec = ConvSpec.create(len(x_shape) - 2, **geometry)
    rng = np.random.default_rng(seed)
    out = spec.output_size(x_shape[2:], w_shape[2:])
    return ConvProblem(rng.standard_normal(x_shape), rng.standard_normal(w_shape), None,
                       rng.standard_normal((x_shape[0], w_shape[0], *out)), spec)


def _right(problem: ConvProblem, name: str) -> tuple[np.ndarray, np.ndarray]:
    p = problem
    index = ("dx", "dw", "db").index(name)
    gradient = conv_backward(p.dy, p.x, p.w, p.b, p.spec)[index]
    return gradient, analytic_bounds(p)[index]


def _patterns(problem, name, change) -> tuple[str, ...]:
    right, bound = _right(problem, name)
    user = change(right.copy())
    return localize(problem, name, user, right, bound).patterns


def _plus_one(index):
    def change(a):
        a[index] += 1.0
        return a

    return change


# Each row: problem, gradient, how the user's gradient is made from the right one, and words
# that must appear in one of the sentences.
CASES = [
    pytest.param(_problem((1, 2, 6, 5), (2, 2, 3, 3), padding=((2, 1), (0, 0))), "dx",
                 _plus_one((..., slice(0, 2), slice(None))),
                 ["first 2 rows", "padding lo = 2"], id="leading-band-is-the-padding-lo"),
    pytest.param(_problem((1, 2, 6, 5), (2, 2, 3, 3), padding=1), "dx",
                 _plus_one((..., -1)), ["last column", "padding hi = 1"], id="last-column"),
    pytest.param(_problem((1, 1, 10), (1, 1, 2), stride=3), "dx", _plus_one((..., slice(0, 9, 3))),
                 ["every 3rd position", "stride s = 3"], id="every-s-th-position"),
    pytest.param(_problem((2, 4, 7), (4, 2, 2), groups=2), "dx", _plus_one((0, slice(2, 4))),
                 ["group 1 of 2", "channels 2–3"], id="one-group"),
    pytest.param(_problem((3, 2, 7), (2, 2, 2)), "dx", _plus_one((1,)), ["sample n = 1 (of 3)"],
                 id="one-sample"),
    pytest.param(_problem((2, 2, 7), (4, 2, 2)), "dw", _plus_one((2,)), ["filter f = 2 (of 4)"],
                 id="one-filter"),
    pytest.param(_problem((2, 3, 7), (2, 3, 2)), "dx", _plus_one((slice(None), 1)),
                 ["channel c = 1 (of 3)"], id="one-channel"),
    pytest.param(_problem((1, 2, 7), (2, 2, 3)), "dx", lambda a: a * (np.arange(7) < 5),
                 ["0 at all 4 wrong entries", "last 2 positions"], id="zero-where-wrong"),
    pytest.param(_problem((1, 1, 8), (1, 1, 3), stride=2), "dx", _plus_one((..., 7)),
                 ["exactly at input positions no window reaches", "past the last window"],
                 id="unreached-tail"),
]


@pytest.mark.parametrize(("problem", "name", "change", "words"), CASES)
def test_each_structure_is_recognised(problem, name, change, words):
    text = " | ".join(_patterns(problem, name, change))
    for word in words:
        assert word in text


def test_what_an_array_equals_is_not_localisation():
    """A constant factor, a flip or a shift is the catalogue's to name (one rule), never also a
    localisation pattern: a report never says the same thing twice in two tolerances."""
    problem = _problem((2, 2, 7), (2, 2, 3))
    for change in (lambda a: 2 * a, lambda a: -a, lambda a: a[..., ::-1], lambda a: 0 * a):
        text = " | ".join(_patterns(problem, "dw", change))
        for word in ("factor", "reversed", "transposed", "shifted", "zero everywhere"):
            assert word not in text


def test_a_dense_random_error_has_no_structure():
    problem = _problem((2, 4, 9, 8), (4, 2, 3, 3), groups=2, padding=1, stride=2)
    right, bound = _right(problem, "dx")
    user = right + np.random.default_rng(3).standard_normal(right.shape)
    where = localize(problem, "dx", user, right, bound)
    assert where.wrong == where.total
    assert where.patterns == ()


def test_the_worst_entry_and_the_count():
    problem = _problem((1, 1, 6), (1, 1, 2))
    right, bound = _right(problem, "dx")
    user = right.copy()
    user[0, 0, 3] += 5.0
    user[0, 0, 1] += 1.0
    where = localize(problem, "dx", user, right, bound)
    assert (where.worst_index, where.wrong, where.total) == ((0, 0, 3), 2, 6)
    assert where.error == pytest.approx(5.0) and where.ratio > 1e10
    assert where.summary().startswith("dL/dx: 2 / 6 entries wrong (33.3%)")


def test_reached_marks_the_gaps_and_the_tail():
    problem = _problem((1, 1, 9), (1, 1, 2), stride=3)  # windows at 0-1, 3-4, 6-7
    assert reached(problem).tolist() == [1, 1, 0, 1, 1, 0, 1, 1, 0]


def test_detectors_are_a_list_of_functions():
    assert all(callable(d) for d in DETECTORS)


@given(conv_problems(naive_layer.supports))
def test_a_right_gradient_has_nothing_to_localise(problem):
    p = problem
    dx = naive_layer.backward(p.dy, p.x, p.w, p.b, p.spec)[0]
    right, bound = _right(problem, "dx")
    where = localize(problem, "dx", dx, right, bound)
    assert (where.wrong, where.patterns) == (0, ())


@pytest.mark.parametrize("name", ["tail-not-zeroed", "groups-crossed", "bias-not-summed-spatially"])
@given(conv_problems(dims=(1, 2), max_stride=3))
def test_any_wrong_example_localises_without_error(name, problem):
    p = problem
    gradients = MISTAKES[name].backward(p.dy, p.x, p.w, p.b, p.spec)
    for label, user in zip(("dx", "dw", "db"), gradients):
        if user is not None:
            where = localize(p, label, user, *_right(p, label))
            assert 0 <= where.wrong <= where.total and all(where.patterns)


# --------------------------------------------------------------------------- heat map


def test_heatmap_of_a_wrong_last_column():
    error = np.zeros((2, 3, 6, 5))
    error[..., -1] = 1.0
    lines = text_heatmap(error, np.full(error.shape, 1e-12)).splitlines()
    assert lines[:-1] == ["|    @|"] * 6
    assert lines[-1].startswith("legend: ' ' within bound") and "summed" in lines[-1]


def test_heatmap_marks_an_error_where_the_bound_is_zero():
    error, bound = np.array([0.0, 1e-3, 2.0]), np.array([0.0, 1.0, 0.0])
    lines = text_heatmap(error, bound).splitlines()
    assert lines[0] == "|  @|" and "'@' also where the bound is 0" in lines[1]


def test_heatmap_keeps_to_twelve_rows_and_the_width():
    error = np.random.default_rng(0).random((1, 1, 40, 200))
    lines = text_heatmap(error, np.full(error.shape, 0.5), max_width=60).splitlines()
    assert len(lines) <= 13 and all(len(line) <= 62 for line in lines[:-1])
    assert "each cell the max of" in lines[-1]


@pytest.mark.parametrize(("shape", "rows"), [((3,), 1), ((1, 2, 9), 1), ((1, 1, 3, 4, 5), 4)],
                         ids=["db", "1-d", "3-d"])
def test_heatmap_rows_by_dimension(shape, rows):
    text = text_heatmap(np.ones(shape), np.full(shape, 0.1))
    assert len(text.splitlines()) == rows + 1
    assert ("max over depth" in text) == (len(shape) == 5)
