"""The pack as one self-contained HTML page: inline CSS and SVG, no script, no network."""

from __future__ import annotations

from pathlib import Path

import jinja2
from markupsafe import Markup, escape

import orchestration.partnership.boardpack.charts as charts
from orchestration.partnership.boardpack.changes import since_last_pack
from orchestration.partnership.boardpack.model import (
    NOT_CALCULATED,
    SHOWN,
    SUPPRESSED,
    Cell,
    Pack,
    breakdown_label,
)
from orchestration.partnership.boardpack.numbers import (
    fmt_count,
    fmt_percent_change,
    fmt_signed,
    fmt_value,
)

TEMPLATES = Path(__file__).with_name("templates")
RAG_SYMBOL = {"green": "✔", "amber": "◆", "red": "✖", "none": "–"}
STATE_WORDS = {SUPPRESSED: "suppressed", NOT_CALCULATED: "not calculated"}


def _env() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(value=fmt_value, count=fmt_count, signed=fmt_signed, pct=fmt_percent_change,
                       breakdown=breakdown_label)
    env.globals.update(SHOWN=SHOWN, SUPPRESSED=SUPPRESSED, NOT_CALCULATED=NOT_CALCULATED, RAG_SYMBOL=RAG_SYMBOL,
                       STATE_WORDS=STATE_WORDS, count_cell=_count_cell, value_cell=_value_cell)
    return env


def _attrs(ind: str, c: Cell, field: str, state: str) -> str:
    return (f'data-indicator="{escape(ind)}" data-geo="{escape(c.geography_code)}" data-period-type="{escape(c.period_type)}" '
            f'data-period="{c.period_start.isoformat()}" data-breakdown="{escape(c.breakdown)}" data-field="{field}" '
            f'data-state="{state}"')


def _count_cell(ind: str, c: Cell, field: str) -> Markup:
    suppressed = c.numerator_suppressed if field == "numerator" else c.denominator_suppressed
    n = c.numerator if field == "numerator" else c.denominator
    if suppressed:
        return Markup(f'<td class="num sup" {_attrs(ind, c, field, SUPPRESSED)}>suppressed<sup>*</sup></td>')
    return Markup(f'<td class="num" {_attrs(ind, c, field, SHOWN)}>{escape(fmt_count(n))}</td>')


def _value_cell(ind: str, c: Cell, field: str) -> Markup:
    v = getattr(c, field)
    if c.state == SUPPRESSED:
        return Markup(f'<td class="num sup" {_attrs(ind, c, field, SUPPRESSED)}>suppressed<sup>*</sup></td>')
    if v is None:
        return Markup(f'<td class="num nc" {_attrs(ind, c, field, NOT_CALCULATED)}>not calculated<sup>†</sup></td>')
    return Markup(f'<td class="num" {_attrs(ind, c, field, SHOWN)}>{escape(fmt_value(v))}</td>')


def render_html(pack: Pack, chart_cache: Path | None = None) -> str:
    """The page; `chart_cache`: a folder of charts already converted (`charts.to_svg`)."""
    sections = []
    for s in pack.indicators:
        trend = charts.trend(s, cache=chart_cache)
        wards = charts.wards(s, cache=chart_cache)
        sections.append({
            "s": s,
            "trend_svg": Markup(trend[0]) if trend else None,
            "trend_text": trend[1] if trend else "",
            "wards_svg": Markup(wards[0]) if wards else None,
            "wards_text": charts.wards_text(s),
            "suppressed_periods": sum(1 for c in s.trend if c.state == SUPPRESSED),
        })
    quality_rows, quality_notes = quality_summary(pack.quality)
    css = (TEMPLATES / "pack.css").read_text()
    changes = since_last_pack(pack.release_dir, pack.protocol)
    return _env().get_template("pack.html.j2").render(
        pack=pack, sections=sections, css=Markup(css), quality_rows=quality_rows, quality_notes=quality_notes,
        changes=changes,
        title=pack.protocol.doc["title"], recipient=pack.protocol.doc["recipient"]["name"],
    )


def quality_summary(doc: dict | None) -> tuple[list[dict], list[str]]:
    """One row per agency, and plain sentences for every problem in the window."""
    if doc is None:
        return [], []
    rows, notes = [], []
    for a in doc["agencies"]:
        ex = a["extracts"]
        row = {
            "agency": a["agency"], "name": a["name"],
            "deliveries": sum(e["deliveries"] for e in ex), "late": sum(e["late"] for e in ex),
            "rejected": sum(e["rejected"] for e in ex), "over_tolerance": sum(e["over_tolerance"] for e in ex),
            "overdue": sum(e.get("overdue", 0) for e in ex),
            # protected counts (empty when suppressed): a total with a suppressed part is not shown
            "rows_read": _total(e["rows_read"] for e in ex), "rows_quarantined": _total(e["rows_quarantined"] for e in ex),
        }
        row["quarantine_rate"] = (row["rows_quarantined"] / row["rows_read"]
                                  if row["rows_read"] and row["rows_quarantined"] is not None else None)
        row["ok"] = not (row["late"] or row["rejected"] or row["over_tolerance"] or row["overdue"])
        rows.append(row)
        for e in ex:
            what = f"{a['name']}, {e['title'].split(' — ')[-1] if e['title'] else e['extract'].replace('_', ' ')}"
            if e["late"]:
                mins = e["max_minutes_late"]
                late_by = f"{mins // 60} h {mins % 60} min" if mins >= 60 else f"{mins} min"
                notes.append(f"{what}: {e['late']} deliver{'y' if e['late'] == 1 else 'ies'} late "
                             f"(due by {e['due_by']}; up to {late_by} late).")
            if e["rejected"]:
                reasons = ", ".join(f"{k.replace('_', ' ')} ×{v}" for k, v in e["rejected_reasons"].items())
                notes.append(f"{what}: {e['rejected']} deliver{'y' if e['rejected'] == 1 else 'ies'} rejected ({reasons}); "
                             f"the last good data stayed in use.")
            if e["over_tolerance"]:
                tol = e["quarantine_tolerance"]
                notes.append(f"{what}: {e['over_tolerance']} deliver{'y' if e['over_tolerance'] == 1 else 'ies'} with "
                             f"quarantined rows above the contract's tolerance"
                             + (f" of {tol:.0%}." if tol is not None else "."))
            if e.get("overdue"):
                n = e["overdue"]
                notes.append(f"{what}: {n} {e['cadence'] or ''} deliver{'y' if n == 1 else 'ies'} overdue "
                             f"(due by {e['due_by']}, not arrived).")
            elif e["deliveries"] == 0 and e["cadence"] in ("nightly", "weekly"):
                notes.append(f"{what}: no delivery arrived in the period (expected {e['cadence']}).")
    return rows, notes


def _total(counts) -> int | None:
    counts = list(counts)
    return None if any(n is None for n in counts) else sum(counts)


def headline_lines(pack: Pack) -> list[str]:
    """The headline tiles as plain text lines (the e-mail body)."""
    out = []
    for s in pack.indicators:
        if s.latest is None:
            out.append(f"  {s.id} {s.title}: no values in this release")
            continue
        if s.latest.state == SHOWN:
            ci = f" (95% CI {fmt_value(s.latest.lower_ci)} to {fmt_value(s.latest.upper_ci)})" if s.latest.lower_ci is not None else ""
            now = f"{fmt_value(s.latest.value)} {s.unit}{ci}"
        else:
            now = STATE_WORDS[s.latest.state]
        change = ""
        if s.change is not None and s.change.difference is not None:
            change = f"; {fmt_signed(s.change.difference)} since {s.change.previous.period_label}"
        out.append(f"  {s.id} {s.title}, {s.latest.period_label}: {now}{change}; {s.rag.label.lower()}")
    return out
