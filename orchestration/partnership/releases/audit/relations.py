"""The relations the audit's attacker derives itself, from the cells' keys alone.

A recipient does not need a protocol to tell it that wards add up to their district: the
tables' structure says so. Every cell is a set of key values; three kinds of key are read as
dimensions, and every other key column (indicator, unit, ...) must agree for cells to be related:

- **breakdown**: `persons` is the total of the breakdowns sharing a prefix (`sex:*`, `age:*`);
- **geography**: a district is the total of its wards (`geography_type`/`geography_code`, wards
  assigned to districts by the reference geography, or all wards when the table has one district);
- **period**: a period is the total of any finer periods that tile it exactly, by their dates
  (months within a quarter, quarters or months within a year, months within a pooled 12 months).

A protocol's declared margins add relations; they never replace these. Each relation is
`total = Σ members` for one figure (a count column). This module does not use the release
builder's code.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import date, timedelta

PERIOD = ("period_type", "period_start", "period_end")
GEOGRAPHY = ("geography_type", "geography_code", "geography_name")
BREAKDOWN = ("breakdown",)
_SPAN = {"month": 1, "quarter": 3, "year": 12}


class Relation(tuple):
    """(total cell, member cells, name): total = Σ members."""
    __slots__ = ()

    def __new__(cls, total: str, members: tuple[str, ...], name: str):
        return super().__new__(cls, (total, members, name))

    total = property(lambda self: self[0])
    members = property(lambda self: self[1])
    name = property(lambda self: self[2])


def describe(cell: dict) -> str:
    """A cell named by its coordinates (never a figure): key values but names, ends and units."""
    skip = {"geography_name", "period_end", "unit"}
    return " ".join(str(v) for k, v in sorted(cell.items(), key=lambda kv: _ORDER.get(kv[0], 50)) if k not in skip)


_ORDER = {"indicator_id": 0, "period_type": 1, "period_start": 2, "geography_type": 3, "geography_code": 4, "breakdown": 5}


def _context(cell: dict, dims: tuple[str, ...]) -> str:
    return json.dumps({k: v for k, v in cell.items() if k not in dims}, sort_keys=True, default=str)


def _end(cell: dict) -> date | None:
    if cell.get("period_end"):
        return date.fromisoformat(str(cell["period_end"]))
    months = _SPAN.get(str(cell.get("period_type")))
    if months is None:
        return None
    s = date.fromisoformat(str(cell["period_start"]))
    m = s.month - 1 + months
    y, m = s.year + m // 12, m % 12 + 1
    return date(y, m, 1) - timedelta(days=1)


def breakdown_relations(cells: dict[str, dict]) -> list[Relation]:
    groups: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for key, cell in cells.items():
        b = cell.get("breakdown")
        if not isinstance(b, str):
            continue
        g = groups[_context(cell, BREAKDOWN)]
        if b == "persons":
            g["persons"].append(key)
        elif ":" in b:
            g[b.split(":", 1)[0] + ":"].append(key)
    out = []
    for g in groups.values():
        for total in g.get("persons", []):
            out += [Relation(total, tuple(sorted(ms)), f"{prefix[:-1]} groups within persons")
                    for prefix, ms in g.items() if prefix != "persons"]
    return out


def geography_relations(cells: dict[str, dict], parents: dict[str, str] | None) -> list[Relation]:
    groups: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for key, cell in cells.items():
        t = cell.get("geography_type")
        if t in ("ward", "district"):
            groups[_context(cell, GEOGRAPHY)][t].append(key)
    out = []
    for g in groups.values():
        districts = g.get("district", [])
        for d in districts:
            code = cells[d]["geography_code"]
            if parents:
                members = [w for w in g.get("ward", []) if parents.get(cells[w]["geography_code"]) == code]
            else:
                members = g.get("ward", []) if len(districts) == 1 else []
            if members:
                out.append(Relation(d, tuple(sorted(members)), "wards within the district"))
    return out


def period_relations(cells: dict[str, dict]) -> list[Relation]:
    groups: dict[str, list[tuple[date, date, str, str]]] = defaultdict(list)
    for key, cell in cells.items():
        if cell.get("period_start") is None or cell.get("period_type") is None:
            continue
        end = _end(cell)
        if end is not None:
            groups[_context(cell, PERIOD)].append((date.fromisoformat(str(cell["period_start"])), end,
                                                   str(cell["period_type"]), key))
    out = []
    for rows in groups.values():
        by_type: dict[str, list[tuple[date, date, str]]] = defaultdict(list)
        for s, e, t, k in rows:
            by_type[t].append((s, e, k))
        for t in by_type:
            by_type[t].sort()
        for s, e, t, k in rows:
            for other, finer in by_type.items():
                if other == t:
                    continue
                inside = [(fs, fe, fk) for fs, fe, fk in finer if fs >= s and fe <= e]
                if len(inside) < 2 or inside[0][0] != s or inside[-1][1] != e:
                    continue
                if all(inside[i + 1][0] == inside[i][1] + timedelta(days=1) for i in range(len(inside) - 1)):
                    out.append(Relation(k, tuple(sorted(fk for _, _, fk in inside)), f"{other}s within the {t}"))
    return out


def declared_relations(cells: dict[str, dict], margins: list[dict]) -> list[Relation]:
    out = []
    for m in margins or []:
        totals: dict[tuple, list[str]] = defaultdict(list)
        members: dict[tuple, list[str]] = defaultdict(list)
        for key, cell in cells.items():
            if m["column"] not in cell or any(b not in cell for b in m["by"]):
                continue
            v = cell[m["column"]]
            k = tuple(str(cell[b]) for b in m["by"])
            if v == m["total"]:
                totals[k].append(key)
            elif isinstance(v, str) and ((m.get("members") and v in m["members"])
                                         or (not m.get("members") and m.get("members_prefix") and v.startswith(m["members_prefix"]))):
                members[k].append(key)
        out += [Relation(t, tuple(sorted(members[k])), f"declared margin '{m['name']}'")
                for k, ts in totals.items() if members.get(k) for t in ts]
    return out


def relations(cells: dict[str, dict], margins: list[dict] | None = None,
              parents: dict[str, str] | None = None) -> list[Relation]:
    """Every additive relation among `cells` (cell key -> parsed key values), once each."""
    seen: dict[tuple, Relation] = {}
    for r in (breakdown_relations(cells) + geography_relations(cells, parents) + period_relations(cells)
              + declared_relations(cells, margins or [])):
        seen.setdefault((r.total, frozenset(r.members)), r)
    return list(seen.values())


def multiplier(unit: object) -> float | None:
    """What a `value` is k × numerator / denominator with: percent → 100, 'per 100,000 ...' → 100000."""
    if not isinstance(unit, str):
        return None
    u = unit.strip().lower()
    if u in ("percent", "%", "percentage"):
        return 100.0
    if u.startswith("per "):
        word = u[4:].split()[0].replace(",", "")
        return float(word) if word.isdigit() else None
    if u in ("proportion", "ratio"):
        return 1.0
    return None

