"""What the warehouse holds of each extract's deliveries, in totals: the table `partnership run`
shows after a night."""

from __future__ import annotations

from dataclasses import dataclass

from orchestration.partnership.settings import Settings
from orchestration.partnership.warehouse.connection import connect


@dataclass(frozen=True)
class ExtractTotals:
    extract: str  # the contract id, or "(unknown)" for files no contract matched
    accepted: int
    rejected: int
    rows_read: int
    rows_valid: int
    rows_quarantined: int


def delivery_totals(settings: Settings) -> list[ExtractTotals]:
    """Every extract's deliveries accepted and rejected, and their rows, by extract."""
    with connect(settings.warehouse_path, read_only=True) as con:
        rows = con.execute(
            """select coalesce(contract_id, '(unknown)'), count(*) filter (where status = 'accepted'),
                      count(*) filter (where status = 'rejected'), coalesce(sum(rows_read), 0),
                      coalesce(sum(rows_valid), 0), coalesce(sum(rows_quarantined), 0)
               from ops.deliveries group by 1 order by 1""").fetchall()
    return [ExtractTotals(*r) for r in rows]
