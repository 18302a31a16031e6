"""Regression corpora: round trips, stable names, atomic writes, corrupt files, replay."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings

from examples.misbehaving import MISBEHAVING
from examples.mistakes import MISTAKES
from examples.naive_conv import layer as naive_layer
from gradcheck.errors import GradientMismatch, InvalidArgument, InvalidArgumentType, LayerError
from gradcheck.geometry.problem import ConvProblem
from gradcheck.geometry.spec import ConvSpec, output_shape
from gradcheck.geometry.supports import Supports
from gradcheck.harness.check import check_regression, check_regressions
from gradcheck.harness.corpus import (
    list_regressions,
    load_regression,
    load_regressions,
    save_regression,
)
from gradcheck.harness.fuzz import fuzz_layer, save_failure
from gradcheck.harness.outcome import Failure
from gradcheck.harness.request import Request
from gradcheck.judge.result import LayerReport
from gradcheck.strategies import conv_problems


def make_problem(dims: int = 1, dtype: str = "float64", bias: bool = True,
                 seed: int = 0) -> ConvProblem:
    """Stride 2, asymmetric padding, 2 groups: nothing about the geometry is the default."""
    rng = np.random.default_rng(seed)
    spec = ConvSpec(dims, stride=2, padding=((1, 0),) * dims, dilation=1, groups=2)
    x_shape, w_shape = (2, 4, *(5,) * dims), (6, 2, *(2,) * dims)
    y_shape = output_shape(x_shape, w_shape, spec)

    def normal(shape: tuple[int, ...]) -> np.ndarray:
        return rng.standard_normal(shape).astype(dtype)

    b = normal((6,)) if bias else None
    return ConvProblem(normal(x_shape), normal(w_shape), b, normal(y_shape), spec)


def assert_same(saved: ConvProblem, loaded: ConvProblem) -> None:
    assert loaded.spec == saved.spec
    for name in ("x", "w", "b", "dy"):
        a, b = getattr(saved, name), getattr(loaded, name)
        if a is None:
            assert b is None, name
            continue
        assert b.dtype == a.dtype, name
        np.testing.assert_array_equal(b, a, err_msg=name)


def case_files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


# --------------------------------------------------------------------------- round trip


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
@pytest.mark.parametrize("dtype", ["float32", "float64", "complex128"])
@pytest.mark.parametrize("dims", [1, 2, 3], ids=["1d", "2d", "3d"])
def test_round_trip(tmp_path: Path, dims: int, dtype: str, bias: bool) -> None:
    problem = make_problem(dims, dtype, bias)
    meta = {"target": "examples/naive_conv.py:layer", "seed": np.int64(7), "dims": (dims,)}
    path = save_regression(problem, tmp_path, meta=meta)
    name, loaded, loaded_meta = load_regression(path)
    assert path == tmp_path / f"{name}.json"
    assert_same(problem, loaded)
    assert loaded_meta == {"target": "examples/naive_conv.py:layer", "seed": 7, "dims": [dims]}
    document = json.loads(path.read_text())
    assert document["dtype"] == dtype
    assert document["has_bias"] is bias
    assert document["spec"] == {"dims": dims, "stride": [2] * dims, "padding": [[1, 0]] * dims,
                                "dilation": [1] * dims, "groups": 2}
    assert document["shapes"]["x"] == [2, 4, *(5,) * dims]


@settings(max_examples=30, deadline=None)
@given(problem=conv_problems(dtypes=("float32", "float64", "complex128")))
def test_round_trip_drawn(problem: ConvProblem) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = save_regression(problem, directory)
        (name, loaded, meta), = load_regressions(directory)
        assert path.name == f"{name}.json"
        assert meta == {}
        assert_same(problem, loaded)


def test_load_accepts_either_file_or_the_bare_name(tmp_path: Path) -> None:
    path = save_regression(make_problem(), tmp_path, name="case-1")
    for spelling in (path, tmp_path / "case-1.npz", tmp_path / "case-1", str(path)):
        name, loaded, _ = load_regression(spelling)
        assert name == "case-1"
        assert_same(make_problem(), loaded)


def test_cases_are_sorted_by_name(tmp_path: Path) -> None:
    for name, seed in (("b", 1), ("c", 2), ("a", 3)):
        save_regression(make_problem(seed=seed), tmp_path, name=name)
    assert [name for name, _, _ in load_regressions(tmp_path)] == ["a", "b", "c"]
    assert [p.name for p in list_regressions(tmp_path)] == ["a.json", "b.json", "c.json"]


# --------------------------------------------------------------------------- names


def test_default_name_is_a_stable_content_hash(tmp_path: Path) -> None:
    first = save_regression(make_problem(), tmp_path, meta={"run": 1})
    again = save_regression(make_problem(), tmp_path, meta={"run": 2})
    assert first == again
    assert len(first.stem) == 12
    assert set(first.stem) <= set("0123456789abcdef")
    assert case_files(tmp_path) == [f"{first.stem}.json", f"{first.stem}.npz"]
    other = save_regression(make_problem(seed=1), tmp_path)
    assert other != first
    respaced = make_problem()
    moved = ConvProblem(respaced.x, respaced.w, respaced.b, respaced.dy,
                        ConvSpec(1, stride=2, padding=((0, 1),), dilation=1, groups=2))
    assert save_regression(moved, tmp_path) != first  # the spec is part of the content


def test_directory_is_created(tmp_path: Path) -> None:
    path = save_regression(make_problem(), tmp_path / "deep" / "corpus", name="x1")
    assert path == tmp_path / "deep" / "corpus" / "x1.json"


@pytest.mark.parametrize(
    "kwargs, error, fragment",
    [
        pytest.param({"name": ""}, InvalidArgument, "name=''", id="empty-name"),
        pytest.param({"name": "../escape"}, InvalidArgument, "name='../escape'", id="path-name"),
        pytest.param({"name": ".hidden"}, InvalidArgument, "name='.hidden'", id="dot-name"),
        pytest.param({"name": "a b"}, InvalidArgument, "name='a b'", id="space-name"),
        pytest.param({"name": 3}, InvalidArgument, "name=3", id="int-name"),
        pytest.param({"meta": [1, 2]}, InvalidArgumentType, "meta=[1, 2]", id="meta-not-dict"),
        pytest.param({"meta": {"f": object}}, InvalidArgumentType, "expected JSON data",
                     id="meta-not-json"),
    ],
)
def test_bad_save_arguments(tmp_path: Path, kwargs: dict, error: type, fragment: str) -> None:
    with pytest.raises(error) as info:
        save_regression(make_problem(), tmp_path, **kwargs)
    assert fragment in str(info.value)
    assert case_files(tmp_path) == []


def test_save_needs_a_problem(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentType, match="problem="):
        save_regression({"x": 1}, tmp_path)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- atomicity


def test_no_temporary_files_are_left(tmp_path: Path) -> None:
    path = save_regression(make_problem(), tmp_path)
    save_regression(make_problem(), tmp_path)
    assert case_files(tmp_path) == [path.name, path.with_suffix(".npz").name]


@pytest.mark.parametrize("failing", [".npz", ".json"], ids=["npz-replace", "json-replace"])
def test_failed_replace_leaves_no_partial_case(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    real_replace = os.replace

    def replace(src: str, dst: str | os.PathLike[str]) -> None:
        if str(dst).endswith(failing):
            raise OSError("simulated: disk full")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(OSError, match="disk full"):
        save_regression(make_problem(), tmp_path)
    monkeypatch.undo()
    assert load_regressions(tmp_path) == []
    # no temporary file and no json; the npz written before a failed json is an orphan
    left = [Path(name).suffix for name in case_files(tmp_path)]
    assert left == ([] if failing == ".npz" else [".npz"])


def test_interrupted_overwrite_is_detected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """New npz, old json: the content hash tells, instead of a silently mixed case."""
    save_regression(make_problem(seed=0), tmp_path, name="case")
    real_replace = os.replace

    def replace(src: str, dst: str | os.PathLike[str]) -> None:
        if str(dst).endswith(".json"):
            raise OSError("simulated: killed")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(OSError):
        save_regression(make_problem(seed=1), tmp_path, name="case")
    monkeypatch.undo()
    with pytest.raises(InvalidArgument, match="content_hash") as info:
        load_regressions(tmp_path)
    assert str(tmp_path / "case.json") in str(info.value)


def test_npz_without_json_is_not_a_case(tmp_path: Path) -> None:
    path = save_regression(make_problem(), tmp_path)
    path.unlink()
    assert load_regressions(tmp_path) == []
    with pytest.raises(InvalidArgument, match="not completely written") as info:
        load_regression(path.with_suffix(".npz"))
    assert str(path) in str(info.value)


# --------------------------------------------------------------------------- corrupt files

Mutation = Callable[[Path, Path], None]


def edit_json(**changes: object) -> Mutation:
    """Replace top-level keys (a callable value maps the old value; None deletes the key)."""

    def mutate(json_path: Path, npz_path: Path) -> None:
        document = json.loads(json_path.read_text())
        for key, value in changes.items():
            if value is None:
                del document[key]
            else:
                document[key] = value(document[key]) if callable(value) else value
        json_path.write_text(json.dumps(document))

    return mutate


def write_json(text: str | bytes) -> Mutation:
    def mutate(json_path: Path, npz_path: Path) -> None:
        json_path.write_bytes(text if isinstance(text, bytes) else text.encode())

    return mutate


def rewrite_npz(change: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]) -> Mutation:
    def mutate(json_path: Path, npz_path: Path) -> None:
        with np.load(npz_path) as data:
            arrays = {k: data[k] for k in data.files}
        with open(npz_path, "wb") as stream:
            np.savez(stream, **change(arrays))

    return mutate


def truncate_json(json_path: Path, npz_path: Path) -> None:
    text = json_path.read_text()
    json_path.write_text(text[: len(text) // 2])


def truncate_npz(json_path: Path, npz_path: Path) -> None:
    data = npz_path.read_bytes()
    npz_path.write_bytes(data[: len(data) // 2])


def empty_npz(json_path: Path, npz_path: Path) -> None:
    npz_path.write_bytes(b"")


def garbage_npz(json_path: Path, npz_path: Path) -> None:
    npz_path.write_bytes(bytes(range(256)) * 4)


def npy_not_npz(json_path: Path, npz_path: Path) -> None:
    with open(npz_path, "wb") as stream:
        np.save(stream, np.zeros(3))


def delete_npz(json_path: Path, npz_path: Path) -> None:
    npz_path.unlink()


def spec_with(**fields: object) -> Callable[[dict], dict]:
    return lambda spec: {**spec, **fields}


def shapes_with(**shapes: object) -> Callable[[dict], dict]:
    return lambda old: {**old, **shapes}


JSON, NPZ = "json", "npz"

CORRUPTIONS = [
    pytest.param(truncate_json, JSON, "not valid JSON", id="json-truncated"),
    pytest.param(write_json(b"\xff\xfe{"), JSON, "not valid JSON", id="json-not-utf8"),
    pytest.param(write_json(""), JSON, "not valid JSON", id="json-empty"),
    pytest.param(write_json("[1, 2]"), JSON, "expected a JSON object", id="json-not-object"),
    pytest.param(edit_json(format="numpy"), JSON, "format='numpy'", id="wrong-format"),
    pytest.param(edit_json(version=2), JSON, "version=2", id="newer-version"),
    pytest.param(edit_json(version=True), JSON, "version=True", id="version-bool"),
    pytest.param(edit_json(spec=None), JSON, "missing key 'spec'", id="missing-spec"),
    pytest.param(edit_json(meta=None), JSON, "missing key 'meta'", id="missing-meta"),
    pytest.param(edit_json(has_bias="yes"), JSON, "has_bias='yes'", id="has-bias-string"),
    pytest.param(edit_json(shapes=[]), JSON, "shapes=[]", id="shapes-list"),
    pytest.param(edit_json(spec=spec_with(stride=[0])), JSON, "invalid spec: stride",
                 id="spec-stride-zero"),
    pytest.param(edit_json(spec=spec_with(dims="1")), JSON, "invalid spec: dims",
                 id="spec-dims-string"),
    pytest.param(edit_json(spec=spec_with(kernel=3)), JSON, "spec keys", id="spec-extra-key"),
    pytest.param(edit_json(spec=spec_with(stride=[1])), JSON, "make no valid problem",
                 id="shapes-inconsistent-with-spec"),
    pytest.param(edit_json(spec=spec_with(groups=3)), JSON, "make no valid problem",
                 id="groups-inconsistent-with-shapes"),
    pytest.param(edit_json(spec=spec_with(padding=[[0, 1]])), JSON, "content_hash",
                 id="spec-hand-edited"),
    pytest.param(edit_json(dtype="float32"), JSON, "dtype='float32'", id="dtype-edited"),
    pytest.param(edit_json(has_bias=False), JSON, "has_bias=False", id="has-bias-flipped"),
    pytest.param(edit_json(shapes=shapes_with(x=[2, 4, 6])), NPZ, "x has shape",
                 id="json-shape-differs"),
    pytest.param(edit_json(dtypes=lambda d: {**d, "w": "<f4"}), NPZ, "w has dtype",
                 id="json-dtype-differs"),
    pytest.param(delete_npz, NPZ, "arrays are missing", id="json-without-npz"),
    pytest.param(truncate_npz, NPZ, "unreadable npz", id="npz-truncated"),
    pytest.param(empty_npz, NPZ, "unreadable npz", id="npz-empty"),
    pytest.param(garbage_npz, NPZ, "unreadable npz", id="npz-garbage"),
    pytest.param(npy_not_npz, NPZ, "not an npz archive", id="npz-is-npy"),
    pytest.param(rewrite_npz(lambda a: {k: v for k, v in a.items() if k != "dy"}), NPZ,
                 "missing ['dy']", id="npz-array-missing"),
    pytest.param(rewrite_npz(lambda a: {**a, "z": np.zeros(1)}), NPZ, "unexpected ['z']",
                 id="npz-extra-array"),
    pytest.param(rewrite_npz(lambda a: {**a, "x": np.array([None] * 40, dtype=object)}), NPZ,
                 "unreadable npz", id="npz-pickled-object-array"),
    pytest.param(rewrite_npz(lambda a: {**a, "x": a["x"] + 1}), JSON, "content_hash",
                 id="values-edited"),
    pytest.param(rewrite_npz(lambda a: {**a, "x": np.where(a["x"] > 0, np.nan, a["x"])}),
                 JSON, "every value must be finite", id="nan-in-array"),
]


@pytest.mark.parametrize("mutate, culprit, fragment", CORRUPTIONS)
def test_corrupt_case_names_the_file(
    tmp_path: Path, mutate: Mutation, culprit: str, fragment: str
) -> None:
    json_path = save_regression(make_problem(), tmp_path, name="case")
    npz_path = json_path.with_suffix(".npz")
    mutate(json_path, npz_path)
    with pytest.raises(InvalidArgument) as info:
        load_regressions(tmp_path)
    message = str(info.value)
    assert str(json_path if culprit == JSON else npz_path) in message
    assert fragment in message
    with pytest.raises(InvalidArgument):
        load_regression(json_path)


@pytest.mark.parametrize(
    "make, fragment",
    [
        pytest.param(lambda tmp: tmp / "absent", "no such directory", id="missing"),
        pytest.param(lambda tmp: Path(save_regression(make_problem(), tmp)), "not a directory",
                     id="a-file"),
    ],
)
def test_bad_corpus_directory(tmp_path: Path, make: Callable[[Path], Path], fragment: str) -> None:
    directory = make(tmp_path)
    with pytest.raises(InvalidArgument, match=fragment) as info:
        load_regressions(directory)
    assert str(directory) in str(info.value)


def test_missing_case_names_its_path(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="no such file") as info:
        load_regression(tmp_path / "nothing.json")
    assert str(tmp_path / "nothing.json") in str(info.value)


# --------------------------------------------------------------------------- replay


@pytest.fixture(scope="module")
def sign_flipped_corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    directory = tmp_path_factory.mktemp("corpus")
    result = fuzz_layer(MISTAKES["sign-flipped"], save_regressions=str(directory),
                        target="examples/mistakes.py:sign_flipped")
    assert result.status == "mismatch"
    assert result.failure is not None and result.failure.saved is not None
    return directory, Path(result.failure.saved)


def test_saved_failure_keeps_the_run(sign_flipped_corpus: tuple[Path, Path]) -> None:
    _, path = sign_flipped_corpus
    _, problem, meta = load_regression(path)
    assert meta["target"] == "examples/mistakes.py:sign_flipped"
    assert meta["status"] == "mismatch"
    assert meta["seed"] == 0
    assert meta["error_type"] == "GradientMismatch"
    assert problem.describe() in meta["error"]


def test_regression_fails_the_wrong_layer(sign_flipped_corpus: tuple[Path, Path]) -> None:
    directory, path = sign_flipped_corpus
    with pytest.raises(GradientMismatch) as info:
        check_regressions(MISTAKES["sign-flipped"], directory)
    assert str(info.value).startswith(f"regression case {path.stem} ({path}): MISMATCH ")
    assert "configuration: x(" in str(info.value)
    assert "[sign-flipped]" in str(info.value)
    assert isinstance(info.value.result, LayerReport)
    assert not info.value.result.passed


def test_regression_passes_the_right_layer(sign_flipped_corpus: tuple[Path, Path]) -> None:
    directory, path = sign_flipped_corpus
    reports = check_regressions(naive_layer, directory)
    assert len(reports) == 1
    assert reports[0].passed
    assert check_regression(naive_layer, path).passed


def test_regression_keeps_the_layer_error_reason(sign_flipped_corpus: tuple[Path, Path]) -> None:
    directory, path = sign_flipped_corpus
    with pytest.raises(LayerError) as info:
        check_regressions(MISBEHAVING["raised"], directory)
    assert info.value.reason == "raised"
    assert str(info.value).startswith(f"regression case {path.stem} ({path}): ")


def test_nothing_to_save_from_a_pass(tmp_path: Path) -> None:
    result = fuzz_layer(naive_layer, examples=3, save_regressions=str(tmp_path))
    assert result.passed and not result.failures
    assert case_files(tmp_path) == []


def test_a_layer_error_without_a_problem_saves_nothing(tmp_path: Path) -> None:
    failure = Failure("layer-error", None, LayerError("broken", "raised"), 1)
    assert save_failure(failure, Request(), Supports(), tmp_path) is None
