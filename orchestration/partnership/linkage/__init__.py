"""Linking people and households across agencies (see docs/linkage.md).

Domain code only: no Dagster imports. `run_linkage` is what the `linkage/person_records`
asset calls; `evaluate` measures the result against the demo generator's truth.
"""

from orchestration.partnership.linkage.pipeline import (
    LinkageSummary,
    model_path,
    report_dir,
    run_linkage,
)

__all__ = ["LinkageSummary", "model_path", "report_dir", "run_linkage"]
