"""dbt's nodes as Dagster assets.

dbt runs in its own process (`partnership.dbt.runner.dbt_executable`); this process only reads
its manifest. dagster-dbt imports dbt-core's Python whenever it can find it, for enums and a
node-selection engine that this code location, selecting the whole manifest, does not need, so
dbt-core is hidden while dagster-dbt is imported here to spare every start of a night, the UI's
code server and the tests its import (docs/benchmarks.md, fixed costs); dagster-dbt then reads
the manifest's nodes, as it does without dbt-core (dbt Fusion). The definitions are the same either
way: tests/integration/test_definitions.py compares the two.
"""

from __future__ import annotations

import sys


class _HideDbtCore:
    """A finder that says dbt-core's `dbt` package is not there."""

    def find_spec(self, name, path=None, target=None):
        if name == "dbt" or name.startswith("dbt."):
            raise ModuleNotFoundError(f"No module named {name!r} (hidden while dagster-dbt is imported)", name=name)
        return None


def _import_dagster_dbt_without_dbt_core() -> None:
    if "dagster_dbt" in sys.modules or "dbt" in sys.modules:
        return  # imported already (either way, the same definitions)
    finder = _HideDbtCore()
    sys.meta_path.insert(0, finder)
    try:
        import dagster_dbt  # noqa: F401
    finally:
        sys.meta_path.remove(finder)


_import_dagster_dbt_without_dbt_core()
