"""PNG error maps (the `plot` extra): written, non-trivial, one per wrong gradient."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from gradcheck import ConvSpec, InvalidArgument, conv_backward, conv_forward
from gradcheck.explain.plot import error_map_png, error_maps

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def gradients(dims: int, seed: int = 0):
    """dx and dw of a small batched, multi-channel problem."""
    rng = np.random.default_rng(seed)
    spec = ConvSpec.create(dims, stride=2, padding=1)
    x = rng.standard_normal((2, 3, *(7,) * dims))
    w = rng.standard_normal((4, 3, *(3,) * dims))
    dy = rng.standard_normal(conv_forward(x, w, None, spec).shape)
    dx, dw, _ = conv_backward(dy, x, w, None, spec)
    return dx, dw


def assert_readable_png(path) -> None:
    image = pytest.importorskip("matplotlib.image")
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    assert len(data) > 5_000
    pixels = image.imread(path)
    assert pixels.ndim == 3 and pixels.shape[0] > 100 and pixels.shape[1] > 300
    assert np.ptp(pixels[..., :3]) > 0.5  # not one flat colour


@pytest.mark.parametrize("dims", [1, 2, 3])
def test_error_map_png_is_written_and_not_trivial(tmp_path, dims):
    pytest.importorskip("matplotlib")
    dx, _ = gradients(dims)
    wrong = dx.copy()
    wrong[(slice(None), slice(None), *(slice(-1, None),) * dims)] = 0.0  # last corner zeroed
    path = error_map_png(tmp_path / "maps" / "dx.png", "dx", wrong, dx, 1e-8,
                         f"{dims}-d, stride 2, padding 1")
    assert path == tmp_path / "maps" / "dx.png"
    assert_readable_png(path)


def test_error_map_of_a_bias_gradient_and_complex_values(tmp_path):
    pytest.importorskip("matplotlib")
    db = np.arange(5.0) + 1j
    assert_readable_png(error_map_png(tmp_path / "db.png", "db", -db, db, 1e-9, "bias"))


def test_error_maps_writes_one_png_per_wrong_gradient(tmp_path):
    pytest.importorskip("matplotlib")
    dx, dw = gradients(2)
    arrays = {"dx": (dx, dx, 1e-8), "dw": (2 * dw, dw, 1e-8), "dL/db": (np.ones(4), np.zeros(4),
                                                                        0.5)}
    written = error_maps(tmp_path, "x(2, 3, 7, 7) w(4, 3, 3, 3) stride 2", arrays)
    assert [p.name for p in written] == ["dw.png", "dL_db.png"]
    for path in written:
        assert_readable_png(path)
    every = error_maps(tmp_path / "all", "same", arrays, only_wrong=False)
    assert [p.name for p in every] == ["dx.png", "dw.png", "dL_db.png"]


BAD = [
    pytest.param(np.zeros((2, 3)), np.zeros((3, 2)), 1.0, "expected.shape", id="shapes-differ"),
    pytest.param(np.zeros(3), np.zeros(3), 0.0, "every bound must be > 0", id="zero-bound"),
    pytest.param(np.zeros(3), np.zeros(3), np.ones(4), "bound", id="bound-shape"),
]


@pytest.mark.parametrize(("analytic", "expected", "bound", "message"), BAD)
def test_bad_arguments_are_named(tmp_path, analytic, expected, bound, message):
    pytest.importorskip("matplotlib")
    with pytest.raises(InvalidArgument, match=message):
        error_map_png(tmp_path / "x.png", "dx", analytic, expected, bound, "bad")
    assert not (tmp_path / "x.png").exists()


def test_missing_matplotlib_says_what_to_install(tmp_path, monkeypatch):
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match=r"pip install 'gradcheck\[plot\]'"):
        error_map_png(tmp_path / "x.png", "dx", np.zeros(3), np.ones(3), 1.0, "no matplotlib")


def test_importing_the_module_does_not_import_matplotlib():
    import os
    import subprocess
    from pathlib import Path

    import gradcheck

    root = str(Path(gradcheck.__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    code = "import sys, gradcheck.explain.plot; print('matplotlib' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, env=env)
    assert result.stdout.strip() == "False"
