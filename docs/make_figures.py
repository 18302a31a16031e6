"""Regenerate the README's pictures: ``python docs/make_figures.py [--output DIR]``.

The error map of a deliberately wrong layer (examples/mistakes.py, stride ignored in dx) on
one fixed 2-d configuration, large enough for the pattern to show.  Written into ``--output``
(default: this docs/ folder) as ``error-map-dx.png``; needs the ``plot`` extra (matplotlib).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

# examples/ is a folder of the checkout, not installed: put the repository root on the path.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from examples.mistakes import MISTAKES
from gradcheck import ConvProblem, ConvSpec, GradientMismatch, check_layer
from gradcheck.explain.explanation import explain_failure, write_error_maps

#: The folder the README's pictures live in.
DOCS = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=DOCS, metavar="DIR",
                        help="folder to write the PNGs into (default: docs/)")
    args = parser.parse_args()
    rng = np.random.default_rng(7)
    spec = ConvSpec(2, stride=(2, 2), padding=((1, 0), (1, 1)), dilation=(1, 1), groups=1)
    x, w = rng.standard_normal((2, 3, 12, 11)), rng.standard_normal((4, 3, 3, 3))
    out = spec.output_size(x.shape[2:], w.shape[2:])
    problem = ConvProblem(x, w, None, rng.standard_normal((2, 4, *out)), spec)
    try:
        check_layer(MISTAKES["stride-ignored-dx"], problem)
    except GradientMismatch as failure:
        explanation = explain_failure(problem, failure.result)
        args.output.mkdir(parents=True, exist_ok=True)
        for path in write_error_maps(explanation, args.output, problem.describe()):
            target = path.with_name(f"error-map-{path.name}")
            path.replace(target)
            print(f"wrote {target}")
        print(failure.args[0].splitlines()[0])
    else:
        sys.exit("stride-ignored-dx passed check_layer: no error map to draw")


if __name__ == "__main__":
    main()
