"""What a board pack says, read from one release folder and nothing else.

Everything is driven by the release's own tables: the indicator definitions (title, unit,
direction, target) and the disclosure-controlled values with their typed flags. A value the
release withholds stays withheld here: it is shown as suppressed, never as zero.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import polars as pl

from orchestration.partnership.boardpack.numbers import printed
from orchestration.partnership.boardpack.quality import DATA_QUALITY_FILE
from orchestration.partnership.releases.protocols import Protocol

VALUES_SOURCE = "marts.fct_indicator_values"
INDICATORS_SOURCE = "marts.dim_indicators"
AREA = "district"
SMALL_AREA = "ward"
ALL_PERSONS = "persons"
PERIOD_PREFERENCE = ("quarter", "month", "year")

# Cell states, as the pack names them.
SHOWN, SUPPRESSED, NOT_CALCULATED = "shown", "suppressed", "not_calculated"


class PackError(ValueError):
    """The release folder cannot make a pack; the message says why."""


@dataclass(frozen=True)
class Cell:
    """One published value with its disclosure state."""

    period_type: str
    period_start: date
    period_end: date
    geography_code: str
    geography_name: str
    breakdown: str
    numerator: int | None
    numerator_suppressed: bool
    denominator: int | None
    denominator_suppressed: bool
    value: float | None
    lower_ci: float | None
    upper_ci: float | None
    withheld: bool

    @property
    def state(self) -> str:
        if self.withheld or self.numerator_suppressed or self.denominator_suppressed:
            return SUPPRESSED
        return SHOWN if self.value is not None else NOT_CALCULATED

    @property
    def period_label(self) -> str:
        return period_label(self.period_type, self.period_start, self.period_end)


@dataclass(frozen=True)
class Rag:
    status: str  # green | amber | red | none
    label: str
    reason: str


@dataclass(frozen=True)
class Change:
    previous: Cell | None
    difference: float | None
    relative: float | None
    significant: bool | None  # by non-overlapping 95% intervals; None when it cannot be judged
    better: bool | None
    note: str


@dataclass
class WardComparison:
    period: str  # label of the period compared ("" when the release has no ward values)
    area: Cell | None  # the area's value for that period, the reference line
    wards: list[tuple[Cell, str]]  # (ward cell, "higher" | "lower" | "similar" | "not_compared" | a cell state)


@dataclass
class IndicatorSection:
    id: str
    title: str
    unit: str
    direction: str  # lower | higher
    target: float | None
    definition: dict
    period_type: str | None
    trend: list[Cell]
    latest: Cell | None
    change: Change | None
    rag: Rag
    breakdowns: list[Cell]
    wards: WardComparison
    other_periods: dict[str, list[Cell]] = field(default_factory=dict)


@dataclass
class Pack:
    protocol: Protocol
    release_dir: Path
    release_date: date
    manifest: dict
    manifest_sha256: str
    disclosure: dict
    indicators: list[IndicatorSection]
    quality: dict | None
    area_name: str


MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


def period_label(period_type: str, start: date, end: date) -> str:
    if period_type == "month":
        return f"{MONTHS[start.month - 1]} {start.year}"
    if start.year == end.year:
        return f"{MONTHS[start.month - 1]}–{MONTHS[end.month - 1]} {start.year}"
    return f"{MONTHS[start.month - 1]} {start.year}–{MONTHS[end.month - 1]} {end.year}"


def breakdown_label(breakdown: str) -> str:
    if breakdown == ALL_PERSONS:
        return "All persons"
    key, _, value = breakdown.partition(":")
    if key == "sex":
        return {"F": "Female", "M": "Male"}.get(value, value)
    return f"{key.replace('_', ' ').capitalize()} {value}".strip()


def _table_file(release_dir: Path, protocol: Protocol, source: str) -> Path:
    for out in protocol.outputs:
        if out["source"] == source:
            return release_dir / "parquet" / f"{out['table']}.parquet"
    raise PackError(f"protocol {protocol.id} releases no table from {source}; a board pack needs indicator values and definitions")


def breakdown_order(breakdown: str) -> tuple:
    """All persons first, then each dimension (`age:…`, `sex:…`) in its natural order: age bands by
    their lower bound, `under 1` first ("under 1, 1-4, 5-9, 10-15, 16+"), not as text sorts them."""
    if breakdown == ALL_PERSONS:
        return (0, "", (0.0, 0.0), "")
    dimension, _, value = breakdown.partition(":")
    numbers = [int(n) for n in re.findall(r"[0-9]+", value)]
    if not numbers:
        return (1, dimension, (float("inf"), float("inf")), value)
    if value.strip().lower().startswith("under"):  # under N: from 0 to N-1
        return (1, dimension, (0.0, numbers[0] - 1.0), value)
    high = float(numbers[1]) if len(numbers) > 1 else float("inf")  # N+: open above
    return (1, dimension, (float(numbers[0]), high), value)


def _cells(df: pl.DataFrame) -> list[Cell]:
    return [
        Cell(r["period_type"], r["period_start"], r["period_end"], r["geography_code"], r["geography_name"], r["breakdown"],
             r["numerator"], bool(r["numerator_suppressed"]), r["denominator"], bool(r["denominator_suppressed"]),
             r["value"], r["lower_ci"], r["upper_ci"], bool(r["derived_withheld"]))
        for r in df.iter_rows(named=True)
    ]


def rag(cell: Cell | None, direction: str, target: float | None) -> Rag:
    """Against target, the way PHE benchmarks: the whole 95% interval on one side of the target decides.

    Without an interval the value alone is compared. No target, or no value: no rating."""
    if target is None:
        return Rag("none", "No target", "no target is set for this indicator")
    if cell is None or cell.state != SHOWN:
        why = "the latest value is suppressed" if cell is not None and cell.state == SUPPRESSED else "there is no latest value"
        return Rag("none", "Not rated", why)
    # judged on the figures as printed, so that the rating agrees with what the page shows
    lo, hi = ((printed(cell.lower_ci), printed(cell.upper_ci)) if cell.lower_ci is not None and cell.upper_ci is not None
              else (printed(cell.value), printed(cell.value)))
    better_side = (hi < target) if direction == "lower" else (lo > target)
    worse_side = (lo > target) if direction == "lower" else (hi < target)
    interval = "its 95% confidence interval" if cell.lower_ci is not None else "the value"
    if better_side:
        return Rag("green", "Better than target", f"{interval} is entirely on the better side of the target")
    if worse_side:
        return Rag("red", "Worse than target", f"{interval} is entirely on the worse side of the target")
    return Rag("amber", "Not different from target", f"{interval} includes the target")


def change(latest: Cell | None, previous: Cell | None, direction: str) -> Change | None:
    if latest is None:
        return None
    if previous is None:
        return Change(None, None, None, None, None, "no earlier period in this release")
    if latest.state != SHOWN or previous.state != SHOWN:
        which = "this period" if latest.state != SHOWN else previous.period_label
        state = latest.state if latest.state != SHOWN else previous.state
        return Change(previous, None, None, None, None,
                      f"no comparison: {which} is {'suppressed' if state == SUPPRESSED else 'not calculated'}")
    # from the figures as printed: the change the page states is the difference of the values it shows
    now, before = printed(latest.value), printed(previous.value)
    diff = printed(now - before)
    rel = diff / before if before else None
    sig = None
    if None not in (latest.lower_ci, latest.upper_ci, previous.lower_ci, previous.upper_ci):
        sig = printed(latest.lower_ci) > printed(previous.upper_ci) or printed(latest.upper_ci) < printed(previous.lower_ci)
    better = None if diff == 0 else ((diff < 0) == (direction == "lower"))
    if sig is None:
        note = "no confidence intervals to judge the change"
    elif sig:
        note = "a statistically significant change (95% intervals do not overlap)"
    else:
        note = "not statistically significant (95% intervals overlap)"
    return Change(previous, diff, rel, sig, better, note)


def _compare_ward(ward: Cell, area: Cell | None) -> str:
    if ward.state != SHOWN:
        return ward.state
    if area is None or area.state != SHOWN or ward.lower_ci is None or ward.upper_ci is None:
        return "not_compared"
    if printed(ward.lower_ci) > printed(area.value):
        return "higher"
    if printed(ward.upper_ci) < printed(area.value):
        return "lower"
    return "similar"


def _section(ind: dict, values: pl.DataFrame, pooled: tuple[str, ...] = ()) -> IndicatorSection:
    iid = ind["indicator_id"]
    mine = values.filter(pl.col("indicator_id") == iid)
    area = mine.filter((pl.col("geography_type") == AREA) & (pl.col("breakdown") == ALL_PERSONS))
    types = [t for t in PERIOD_PREFERENCE if t in set(area["period_type"].to_list())]
    types += sorted(set(area["period_type"].to_list()) - set(types))
    period_type = types[0] if types else None
    if area["geography_code"].n_unique() > 1:
        raise PackError(f"{iid}: the release holds more than one {AREA}; a pack reports one area")
    trend = _cells(area.filter(pl.col("period_type") == period_type).sort("period_start")) if period_type else []
    latest = trend[-1] if trend else None
    previous = trend[-2] if len(trend) > 1 else None
    direction = ind["direction"]
    target = ind["target"]
    unit = (mine["unit"].drop_nulls().head(1).to_list() or [ind["unit"]])[0]
    breakdowns = []
    if latest is not None:
        breakdowns = _cells(mine.filter((pl.col("geography_type") == AREA) & (pl.col("period_type") == period_type)
                                        & (pl.col("period_start") == latest.period_start)).sort("breakdown"))
        breakdowns.sort(key=lambda c: breakdown_order(c.breakdown))
    wards_df = mine.filter((pl.col("geography_type") == SMALL_AREA) & (pl.col("breakdown") == ALL_PERSONS))
    ward_cmp = WardComparison("", None, [])
    if wards_df.height:
        present = set(wards_df["period_type"].to_list())
        # small areas over pooled periods when the protocol pools them (a single quarter is mostly suppressed)
        wtype = next((t for t in (*pooled, *PERIOD_PREFERENCE) if t in present), min(present))
        wards_df = wards_df.filter(pl.col("period_type") == wtype)
        last = wards_df["period_start"].max()
        wcells = _cells(wards_df.filter(pl.col("period_start") == last).sort("geography_code"))
        match = _cells(area.filter((pl.col("period_type") == wtype) & (pl.col("period_start") == last)))
        area_cell = match[0] if match else None
        ward_cmp = WardComparison(wcells[0].period_label, area_cell, [(w, _compare_ward(w, area_cell)) for w in wcells])
    others = {t: _cells(area.filter(pl.col("period_type") == t).sort("period_start")) for t in types[1:]}
    definition = {k: ind.get(k) for k in ("definition", "source", "numerator_definition", "denominator_definition",
                                          "method", "unit")}
    return IndicatorSection(iid, ind["title"], unit, direction, target, definition, period_type, trend, latest,
                            change(latest, previous, direction), rag(latest, direction, target), breakdowns, ward_cmp,
                            others)


def load(release_dir: Path, protocol: Protocol) -> Pack:
    """Read a published release folder into what the pack shows. Never reads the warehouse."""
    release_dir = Path(release_dir)
    manifest_path = release_dir / "manifest.json"
    if not manifest_path.exists():
        raise PackError(f"{release_dir}: no manifest.json; not a published release")
    manifest = json.loads(manifest_path.read_text())
    if manifest["protocol"]["id"] != protocol.id:
        raise PackError(f"{release_dir}: a release of {manifest['protocol']['id']}, not {protocol.id}")
    if protocol.level != "aggregate":
        raise PackError(f"protocol {protocol.id} is {protocol.level}: board packs are made for aggregate protocols only")
    values_path = _table_file(release_dir, protocol, VALUES_SOURCE)
    defs_path = _table_file(release_dir, protocol, INDICATORS_SOURCE)
    for rel, digest in manifest["files"].items():  # the pack shows what the manifest vouches for
        if rel.startswith("parquet/") and hashlib.sha256((release_dir / rel).read_bytes()).hexdigest() != digest:
            raise PackError(f"{release_dir / rel}: differs from its manifest hash; the release was changed after publication")
    values = pl.read_parquet(values_path)
    defs = pl.read_parquet(defs_path).sort("indicator_id")
    quality = None
    if (release_dir / DATA_QUALITY_FILE).exists():
        quality = json.loads((release_dir / DATA_QUALITY_FILE).read_text())
    pooled = tuple(p["label"] for p in (protocol.disclosure or {}).get("pooled_periods") or [])
    sections = [_section(ind, values, pooled) for ind in defs.iter_rows(named=True)]
    area_names = values.filter(pl.col("geography_type") == AREA)["geography_name"].unique().to_list()
    return Pack(protocol, release_dir, date.fromisoformat(manifest["release_date"]), manifest,
                hashlib.sha256(manifest_path.read_bytes()).hexdigest(), protocol.disclosure or {}, sections, quality,
                area_names[0] if len(area_names) == 1 else "the area")
