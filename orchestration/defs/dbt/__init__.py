"""dbt's nodes as Dagster assets.

dbt runs in its own process (`partnership.dbt_runner.dbt_executable`); this process only reads
its manifest. dagster-dbt imports dbt-core's Python when it can find it (about 2 s of class
building at every start of the night, the UI's code server and the tests) for its enums and
its node-selection engine, neither of which this code location needs: the assets select the
whole manifest, which dagster-dbt then reads from the manifest's nodes, as it does when
dbt-core is not installed (dbt Fusion). So dbt-core is hidden while dagster-dbt is imported
here, and importable again afterwards. The definitions are the same either way (asset keys,
checks, lineage, metadata, jobs): tests/integration/test_definitions.py compares the two.
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
