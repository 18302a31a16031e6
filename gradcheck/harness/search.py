"""How gradcheck drives hypothesis: one settings object for every search it runs.

Fuzzing a layer, fuzzing a VJP and ``gradcheck verify`` all search with the same settings:
no deadline (a layer's own speed is judged by the guarded call's deadline, not by hypothesis),
no health checks (a slow numpy layer is not a badly written test), one failure per search
(gradcheck looks for further, distinct failures itself, each with its own search), no
"explain" phase (gradcheck explains failures its own way), and an example database only when
asked for.
"""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, Phase, settings
from hypothesis.database import DirectoryBasedExampleDatabase

#: Every phase but hypothesis's own "explain" (gradcheck's explanation replaces it).
PHASES = (Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink)


def example_database(directory: str | None) -> DirectoryBasedExampleDatabase | None:
    """Hypothesis's example database under ``directory`` (``DIR/examples``), or None.

    ``directory`` is a storage directory like hypothesis's own ``.hypothesis``: the examples
    live in its ``examples`` folder, so one directory can serve the CLI and a test suite.
    """
    if directory is None:
        return None
    return DirectoryBasedExampleDatabase(str(Path(directory) / "examples"))


def search_settings(examples: int, database: str | None = None) -> settings:
    """The settings of one gradcheck search drawing at most ``examples`` configurations."""
    return settings(
        max_examples=examples,
        database=example_database(database),
        deadline=None,
        derandomize=False,
        report_multiple_bugs=False,
        suppress_health_check=list(HealthCheck),
        phases=PHASES,
        print_blob=False,
    )
