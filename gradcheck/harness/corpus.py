"""Regression corpora: failing problems saved as plain data and replayed against a layer.

A case is two files side by side, data only (no pickle anywhere)::

    <name>.npz     the arrays x, w, dy (and b), written with ``np.savez``
    <name>.json    format version, the spec's fields, dtype, shapes, a content hash, free meta

Both are written to a temporary file in the same directory and moved into place with
``os.replace`` (atomic on POSIX and Windows), the npz first and the json last: a case exists
when its json exists, and its json is only ever written after its npz is complete.  An npz
without its json (an interrupted save) is not a case and is ignored.  The json records the
sha256 of the arrays and the spec, so a mismatched pair (a later save interrupted halfway, a
hand-edited array or spec) is detected on load.  The default name is the first 12 hex digits
of that hash: saving the same problem twice writes the same case.

Loading trusts nothing: every way a file can be truncated, corrupted or hand-edited raises
:class:`~gradcheck.errors.InvalidArgument` naming the file and what is wrong with it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

import numpy as np

from gradcheck.errors import (
    GradcheckError,
    InvalidArgument,
    invalid,
    invalid_type,
)
from gradcheck.geometry.family_problem import ConvTransposeProblem, PoolProblem
from gradcheck.geometry.family_spec import ConvTransposeSpec, PoolSpec
from gradcheck.geometry.problem import ConvProblem
from gradcheck.geometry.spec import ConvSpec

__all__ = [
    "list_regressions",
    "load_regression",
    "load_regressions",
    "save_regression",
]

FORMAT = "gradcheck-regression"
VERSION = 1

_ARRAYS = ("x", "w", "b", "dy")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_HASH_LENGTH = 12
#: Top-level keys of the json and their types (bool is not an int here).
_KEYS: dict[str, type] = {
    "format": str, "version": int, "spec": dict, "dtype": str, "shapes": dict, "dtypes": dict,
    "has_bias": bool, "content_hash": str, "meta": dict,
}

Case = tuple[str, ConvProblem, dict[str, Any]]


# --------------------------------------------------------------------------- helpers


def _corrupt(path: Path, what: str) -> InvalidArgument:
    return InvalidArgument(f"regression file {path}: {what}")


def _directory(directory: Any, name: str = "directory") -> Path:
    if not isinstance(directory, (str, os.PathLike)):
        raise invalid_type(name, directory, "expected a path (str or os.PathLike)")
    return Path(directory)


def _arrays(problem: Any) -> dict[str, np.ndarray]:
    arrays = {"x": problem.x, "w": getattr(problem, "w", None), "b": getattr(problem, "b", None),
              "dy": problem.dy}
    return {k: np.ascontiguousarray(v) for k, v in arrays.items() if v is not None}


#: The family's specs, by the ``kind`` their json carries (a ConvSpec's carries none, so
#: convolution cases and their hashes are as before).
_FAMILY_SPECS = {"conv_transpose": ConvTransposeSpec, "pool": PoolSpec}


def _spec_fields(spec: Any) -> dict[str, Any]:
    if not isinstance(spec, ConvSpec):
        kind = "pool" if isinstance(spec, PoolSpec) else "conv_transpose"
        fields = {name: getattr(spec, name) for name in spec.__dataclass_fields__}
        fields = {k: list(v) if isinstance(v, tuple) else v for k, v in fields.items()}
        return {**fields, "padding": [list(pair) for pair in spec.padding], "kind": kind}
    return {
        "dims": spec.dims,
        "stride": list(spec.stride),
        "padding": [list(pair) for pair in spec.padding],
        "dilation": list(spec.dilation),
        "groups": spec.groups,
    }


def _content_hash(arrays: Mapping[str, np.ndarray], spec: Any) -> str:
    """sha256 of the spec's fields and of every array's name, dtype, shape and bytes."""
    digest = hashlib.sha256(json.dumps(_spec_fields(spec), sort_keys=True).encode())
    for name in _ARRAYS:
        if name in arrays:
            a = np.ascontiguousarray(arrays[name])
            digest.update(f"{name}:{a.dtype.str}:{a.shape};".encode())
            digest.update(a.tobytes())
    return digest.hexdigest()


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (set, frozenset)):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _write_atomic(target: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Write through a temporary file in ``target``'s directory, then ``os.replace`` it."""
    fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as stream:
            write(stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _write_bytes(stream: IO[bytes], data: bytes) -> None:
    stream.write(data)


def case_paths(path: Path) -> tuple[str, Path, Path]:
    """``(name, json, npz)`` from the path of either file or of the case without a suffix."""
    name = path.name
    for suffix in (".json", ".npz"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    return name, path.with_name(f"{name}.json"), path.with_name(f"{name}.npz")


# --------------------------------------------------------------------------- saving


def save_regression(
    problem: ConvProblem,
    directory: str | os.PathLike[str],
    *,
    name: str | None = None,
    meta: Mapping[str, Any] | None = None,
) -> Path:
    """Save a problem as a regression case ``<name>.npz`` + ``<name>.json``; return the json path.

    Parameters
    ----------
    problem : ConvProblem
    directory : path
        Created (with its parents) if needed.
    name : str, optional
        Letters, digits, ``.``, ``_``, ``-`` (at most 100, not starting with a dot); default:
        the first 12 hex digits of the sha256 of the arrays and the spec, so saving the same
        problem twice writes the same case.
    meta : dict, optional
        Free-form JSON data kept with the case (layer target, failure summary, seed …);
        numpy scalars and arrays, tuples and paths are converted.

    Notes
    -----
    Each file is written to a temporary file in ``directory`` and moved into place with
    ``os.replace``, the json last: a case is visible only once both files are complete.
    """
    if not isinstance(problem, (ConvProblem, ConvTransposeProblem, PoolProblem)):
        raise invalid_type("problem", problem, "expected a gradcheck.ConvProblem, "
                           "ConvTransposeProblem or PoolProblem")
    if meta is not None and not isinstance(meta, Mapping):
        raise invalid_type("meta", meta, "expected a dict of JSON data or None")
    if name is not None and (not isinstance(name, str) or not _NAME.fullmatch(name)):
        raise invalid("name", name, "expected 1-100 letters, digits, '.', '_' or '-', "
                      "not starting with '.' or '-'")
    folder = _directory(directory)
    arrays = _arrays(problem)
    content_hash = _content_hash(arrays, problem.spec)
    name = name or content_hash[:_HASH_LENGTH]
    document = {
        "format": FORMAT,
        "version": VERSION,
        "spec": _spec_fields(problem.spec),
        "dtype": problem.dtype.name,
        "shapes": {k: list(v.shape) for k, v in arrays.items()},
        "dtypes": {k: v.dtype.str for k, v in arrays.items()},
        "has_bias": getattr(problem, "b", None) is not None,
        "content_hash": content_hash,
        "meta": dict(meta or {}),
    }
    try:
        text = json.dumps(document, indent=2, sort_keys=True, default=_json_default) + "\n"
    except (TypeError, ValueError) as error:
        raise invalid_type("meta", meta, f"expected JSON data ({error})") from None
    folder.mkdir(parents=True, exist_ok=True)
    _, json_path, npz_path = case_paths(folder / name)
    _write_atomic(npz_path, lambda stream: np.savez(stream, **arrays))  # type: ignore[arg-type]
    _write_atomic(json_path, lambda stream: _write_bytes(stream, text.encode("utf-8")))
    return json_path


# --------------------------------------------------------------------------- loading


def _read_json(path: Path, npz_path: Path) -> dict[str, Any]:
    if not path.is_file():
        if npz_path.is_file():
            raise _corrupt(path, f"missing, but {npz_path.name} exists: the case was not "
                           "completely written (delete the npz or save the case again)")
        raise _corrupt(path, "no such file")
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise _corrupt(path, f"not valid JSON ({error})") from None
    if not isinstance(document, dict):
        raise _corrupt(path, f"expected a JSON object, got {type(document).__name__}")
    if document.get("format") != FORMAT:
        raise _corrupt(path, f"format={document.get('format')!r}: expected {FORMAT!r}")
    for key, kind in _KEYS.items():
        if key not in document:
            raise _corrupt(path, f"missing key {key!r}")
        value = document[key]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise _corrupt(path, f"{key}={value!r}: expected a JSON {kind.__name__}")
    if document["version"] != VERSION:
        raise _corrupt(path, f"version={document['version']!r}: this gradcheck reads version "
                       f"{VERSION} (a newer gradcheck wrote it?)")
    return document


def _read_spec(path: Path, fields: dict[str, Any]) -> Any:
    if "kind" in fields:
        return _read_family_spec(path, dict(fields))
    expected = {"dims", "stride", "padding", "dilation", "groups"}
    if set(fields) != expected:
        raise _corrupt(path, f"spec keys {sorted(fields)}: expected {sorted(expected)}")
    try:
        return ConvSpec(**fields)
    except GradcheckError as error:
        raise _corrupt(path, f"invalid spec: {error}") from None


def _read_family_spec(path: Path, fields: dict[str, Any]) -> Any:
    kind = fields.pop("kind")
    if kind not in _FAMILY_SPECS:
        raise _corrupt(path, f"spec kind={kind!r}: expected one of {sorted(_FAMILY_SPECS)}")
    cls: Any = _FAMILY_SPECS[kind]
    expected = {f.name for f in dataclasses.fields(cls)}
    if set(fields) != expected:
        raise _corrupt(path, f"spec keys {sorted(fields)}: expected {sorted(expected)}")
    try:
        return cls(**fields)
    except (GradcheckError, TypeError) as error:
        raise _corrupt(path, f"invalid spec: {error}") from None


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise _corrupt(path, "no such file: the case's arrays are missing")
    try:
        with open(path, "rb") as stream:  # our handle: closed even when numpy fails
            data = np.load(stream, allow_pickle=False)
            if not isinstance(data, np.lib.npyio.NpzFile):
                raise _corrupt(path, f"not an npz archive (holds a {type(data).__name__})")
            with data:
                return {key: np.asarray(data[key]) for key in data.files}
    except InvalidArgument:
        raise
    except Exception as error:  # any failure to parse untrusted bytes means a corrupt file
        raise _corrupt(path, f"unreadable npz ({type(error).__name__}: {error})") from None


def _check_arrays(
    json_path: Path, npz_path: Path, document: dict[str, Any], arrays: dict[str, np.ndarray]
) -> None:
    pool = document["spec"].get("kind") == "pool"
    expected = {"x", "dy"} | (set() if pool else {"w"}) | ({"b"} if document["has_bias"] else set())
    if set(document["shapes"]) != expected or set(document["dtypes"]) != expected:
        raise _corrupt(json_path, f"shapes/dtypes list {sorted(document['shapes'])}/"
                       f"{sorted(document['dtypes'])}: expected {sorted(expected)} "
                       f"(has_bias={document['has_bias']})")
    if set(arrays) != expected:
        missing, extra = sorted(expected - set(arrays)), sorted(set(arrays) - expected)
        raise _corrupt(npz_path, f"holds arrays {sorted(arrays)}: missing {missing}, "
                       f"unexpected {extra}")
    for key in sorted(expected):
        shape, dtype = document["shapes"][key], document["dtypes"][key]
        if list(arrays[key].shape) != shape:
            raise _corrupt(npz_path, f"{key} has shape {arrays[key].shape}, but "
                           f"{json_path.name} says {shape}")
        if arrays[key].dtype.str != dtype:
            raise _corrupt(npz_path, f"{key} has dtype {arrays[key].dtype.str}, but "
                           f"{json_path.name} says {dtype!r}")


def load_regression(path: str | os.PathLike[str]) -> Case:
    """Load one case from the path of its json, its npz, or the two without a suffix.

    Returns
    -------
    (name, problem, meta)

    Raises
    ------
    InvalidArgument
        The case is missing, truncated, corrupted or hand-edited; the message names the file
        and what is wrong with it.
    """
    name, json_path, npz_path = case_paths(_directory(path, "path"))
    document = _read_json(json_path, npz_path)
    spec = _read_spec(json_path, document["spec"])
    arrays = _read_npz(npz_path)
    _check_arrays(json_path, npz_path, document, arrays)
    try:
        problem: Any
        if isinstance(spec, PoolSpec):
            problem = PoolProblem(arrays["x"], arrays["dy"], spec)
        elif isinstance(spec, ConvTransposeSpec):
            problem = ConvTransposeProblem(arrays["x"], arrays["w"], arrays.get("b"),
                                           arrays["dy"], spec)
        else:
            problem = ConvProblem(arrays["x"], arrays["w"], arrays.get("b"), arrays["dy"], spec)
    except GradcheckError as error:
        what = f"the arrays and the spec make no valid problem: {error}"
        raise _corrupt(json_path, what) from None
    if problem.dtype.name != document["dtype"]:
        raise _corrupt(json_path, f"dtype={document['dtype']!r}, but the arrays promote to "
                       f"{problem.dtype.name}")
    if _content_hash(arrays, spec) != document["content_hash"]:
        raise _corrupt(json_path, f"content_hash does not match {npz_path.name} and the spec: "
                       "the arrays or the spec changed after saving (or a save was interrupted)")
    return name, problem, document["meta"]


def list_regressions(directory: str | os.PathLike[str]) -> list[Path]:
    """The json paths of the cases in ``directory``, sorted by name (nothing is loaded)."""
    folder = _directory(directory)
    if not folder.is_dir():
        what = "not a directory" if folder.exists() else "no such directory"
        raise invalid("directory", str(folder), f"{what}: expected a regression corpus")
    return sorted(p for p in folder.glob("*.json") if not p.name.startswith("."))


def load_regressions(directory: str | os.PathLike[str]) -> list[Case]:
    """Every case in ``directory`` as ``(name, problem, meta)``, sorted by name."""
    return [load_regression(path) for path in list_regressions(directory)]


# --------------------------------------------------------------------------- replaying
