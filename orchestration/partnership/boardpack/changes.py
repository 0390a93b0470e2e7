"""What changed since the last pack: the first page's summary, computed only from the figures the
two releases published (this release's folder and the protocol's previous one), never from the
warehouse and never from anything a release withheld.

Compared per indicator, at the area level for all persons, period by period: periods new in this
release, periods no longer in it, and published figures that differ (a revision, or a figure now
suppressed or now shown). A figure is described by what was published: its value, or that it was
suppressed or not calculated; no difference is worked out from rounded figures.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import polars as pl

from orchestration.partnership.boardpack.model import (
    ALL_PERSONS,
    AREA,
    VALUES_SOURCE,
    Cell,
    _cells,
    _table_file,
)
from orchestration.partnership.boardpack.numbers import fmt_value
from orchestration.partnership.releases.protocols import Protocol

_COMPARED = ("numerator", "numerator_suppressed", "denominator", "denominator_suppressed", "value", "withheld")


@dataclass
class IndicatorChanges:
    id: str
    new_periods: list[str] = field(default_factory=list)
    dropped_periods: list[str] = field(default_factory=list)
    revised: list[str] = field(default_factory=list)  # "<period>: now <figure>, was <figure>"

    @property
    def any(self) -> bool:
        return bool(self.new_periods or self.dropped_periods or self.revised)


@dataclass
class ChangeSummary:
    previous_date: date | None  # None: this is the protocol's first pack
    indicators: list[IndicatorChanges]

    @property
    def changed(self) -> list[IndicatorChanges]:
        return [i for i in self.indicators if i.any]

    def sentences(self) -> list[str]:
        """The summary as plain sentences (the page and the e-mail)."""
        if self.previous_date is None:
            return ["This is the first pack of this protocol: there is no earlier pack to compare with."]
        if not self.changed:
            return [f"No published figure changed since the pack of {self.previous_date}."]
        out = []
        for i in self.changed:
            parts = []
            if i.new_periods:
                parts.append(f"new figures for {', '.join(i.new_periods)}")
            if i.revised:
                parts.append(f"revised {'; '.join(i.revised)}")
            if i.dropped_periods:
                parts.append(f"no longer reports {', '.join(i.dropped_periods)}")
            out.append(f"{i.id}: {'; '.join(parts)}.")
        return out


def previous_release(release_dir: Path) -> Path | None:
    """The protocol's latest published release before this one, if any."""
    release_dir = Path(release_dir)
    earlier = sorted(p for p in release_dir.parent.glob("????-??-??")
                     if p.name < release_dir.name and (p / "manifest.json").exists())
    return earlier[-1] if earlier else None


def _figure(c: Cell) -> str:
    if c.withheld or c.numerator_suppressed or c.denominator_suppressed:
        return "suppressed"
    return fmt_value(c.value) if c.value is not None else "not calculated"


def _area_cells(release_dir: Path, protocol: Protocol) -> dict[tuple, Cell]:
    values = pl.read_parquet(_table_file(release_dir, protocol, VALUES_SOURCE))
    area = values.filter((pl.col("geography_type") == AREA) & (pl.col("breakdown") == ALL_PERSONS))
    out = {}
    for ind in sorted(set(area["indicator_id"].to_list())):
        for c in _cells(area.filter(pl.col("indicator_id") == ind)):
            out[(ind, c.period_type, c.period_start)] = c
    return out


def since_last_pack(release_dir: Path, protocol: Protocol) -> ChangeSummary:
    previous = previous_release(release_dir)
    if previous is None:
        return ChangeSummary(None, [])
    now, before = _area_cells(Path(release_dir), protocol), _area_cells(previous, protocol)
    by_id: dict[str, IndicatorChanges] = {}
    for key in sorted(set(now) | set(before), key=lambda k: (k[0], k[1], k[2])):
        ind = by_id.setdefault(key[0], IndicatorChanges(key[0]))
        cur, old = now.get(key), before.get(key)
        if old is None:
            ind.new_periods.append(cur.period_label)
        elif cur is None:
            ind.dropped_periods.append(old.period_label)
        elif any(getattr(cur, f) != getattr(old, f) for f in _COMPARED):
            ind.revised.append(f"{cur.period_label}: now {_figure(cur)}, was {_figure(old)}")
    previous_date = date.fromisoformat(json.loads((previous / "manifest.json").read_text())["release_date"])
    return ChangeSummary(previous_date, list(by_id.values()))


__all__ = ["ChangeSummary", "IndicatorChanges", "previous_release", "since_last_pack"]
