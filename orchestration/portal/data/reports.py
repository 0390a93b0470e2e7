"""The data-owner report of one delivery (`reports/contracts/<agency>/<stem>.json`), as written
by the night (ingest/reports.py): the rules, their verdicts and masked examples."""

from __future__ import annotations

import json

from orchestration.partnership.ingest.reports import report_stem
from orchestration.partnership.settings import Settings


def delivery_report(settings: Settings, agency: str, delivery: dict) -> dict | None:
    folder = settings.reports_dir / "contracts" / agency
    path = folder / f"{report_stem(delivery['delivery_id'], delivery['file_name'])}.json"
    if not path.resolve().is_relative_to(folder.resolve()) or not path.is_file():
        return None
    doc = json.loads(path.read_text(encoding="utf-8"))
    return doc if doc.get("agency", agency) == agency else None
