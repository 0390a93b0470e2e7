"""An attacker who knows a table is additive over the protocol's margins: the test oracle for
secondary suppression and its audit.

Independent of both `disclosure.py` (elimination in floating point) and the audit's `recoverable_cells` (SVD null
space): the equations are built here from the margins with plain Python, and solved exactly
with fractions (reduced row echelon form, no tolerance). A suppressed cell is recovered when a
row of the reduced system has it as its only unknown. Small tables only (pure Python).
"""

from __future__ import annotations

from collections import defaultdict
from fractions import Fraction


def margin_equations(rows: list[dict], margins: list[dict]) -> list[tuple[int, list[int]]]:
    """(total row, member rows) for each group of each margin: rows agreeing on `by`."""
    out = []
    for m in margins:
        totals, members = defaultdict(list), defaultdict(list)
        for i, r in enumerate(rows):
            v = r[m["column"]]
            key = tuple(r[b] for b in m["by"])
            if v is None:
                continue
            if v == m["total"]:
                totals[key].append(i)
            elif (m.get("members") and v in m["members"]) or \
                    (m.get("members_prefix") is not None and not m.get("members") and v.startswith(m["members_prefix"])):
                members[key].append(i)
        out += [(t, members[k]) for k in totals if members.get(k) for t in totals[k]]
    return out


def recovered(rows: list[dict], count: str, suppressed: list[bool], margins: list[dict]) -> set[int]:
    """Row indices of suppressed cells whose value follows exactly from the published cells."""
    unknown = [i for i, s in enumerate(suppressed) if s]
    col = {c: j for j, c in enumerate(unknown)}
    system = []
    for t, ms in margin_equations(rows, margins):
        coef = [Fraction(0)] * len(unknown)
        rhs = Fraction(0)
        for i, sign in [(t, 1)] + [(m, -1) for m in ms]:
            if suppressed[i]:
                coef[col[i]] += sign
            else:
                rhs -= sign * (rows[i][count] or 0)
        if any(coef):
            system.append(coef + [rhs])
    return {unknown[j] for j in pinned(system, len(unknown))}


def pinned(system: list[list], n: int) -> set[int]:
    """Unknowns (of the first n columns; a right-hand side may follow) that the system fixes."""
    system = [[Fraction(x) for x in row] for row in system]
    r = 0
    for c in range(n):
        pivot = next((k for k in range(r, len(system)) if system[k][c] != 0), None)
        if pivot is None:
            continue
        system[r], system[pivot] = system[pivot], system[r]
        system[r] = [x / system[r][c] for x in system[r]]
        for k in range(len(system)):
            if k != r and system[k][c] != 0:
                system[k] = [a - system[k][c] * b for a, b in zip(system[k], system[r])]
        r += 1
    found = set()
    for row in system[:r]:
        nz = [j for j in range(n) if row[j] != 0]
        if len(nz) == 1:
            found.add(nz[0])
    return found

def random_table(rng, count: str = "n") -> tuple[list[dict], list[dict]]:
    """A small table shaped like an indicator release — indicators x periods x (wards + the district)
    x (persons, sexes, age bands), counts drawn per ward x sex x age so the margins add up — with
    zeros, a few rows missing, a few counts null; and a random subset of the margins, declared
    either by a members list or by a prefix. `rng` is a `random.Random`."""
    sexes = rng.choice([[], ["F", "M"], ["F", "M"]])
    ages = rng.sample(["0-17", "18-64", "65+", "80+"], rng.choice([0, 2, 3]))
    if not sexes and not ages:
        ages = ["0-64", "65+"]
    wards = [f"E0590{w:04d}" for w in range(rng.randint(1, 6))]
    mean = rng.choice([0.5, 2, 5, 15])
    rows = []
    for indicator in ("I1", "I2")[: rng.randint(1, 2)]:
        for period in ("2025-04", "2025-07")[: rng.randint(1, 2)]:
            fine = {(w, s, a): sum(rng.random() < mean / 20 for _ in range(20)) * rng.choice([1, 1, 1, 3])
                    for w in wards for s in (sexes or [None]) for a in (ages or [None])}
            for geo, codes in (("ward", wards), ("district", ["E07900001"])):
                for code in codes:
                    def total(s=None, a=None):
                        return sum(v for (w, ss, aa), v in fine.items()
                                   if (geo == "district" or w == code) and s in (None, ss) and a in (None, aa))
                    cells = [("persons", total())] + [(f"sex:{s}", total(s=s)) for s in sexes] \
                        + [(f"age:{a}", total(a=a)) for a in ages]
                    rows += [{"indicator_id": indicator, "period_start": period, "geography_type": geo,
                              "geography_code": code, "breakdown": b, count: v} for b, v in cells]
    rows = [r for r in rows if rng.random() > 0.05]
    for r in rows:
        if rng.random() < 0.03:
            r[count] = None
    margins = []
    if rng.random() < 0.8:
        margins.append({"name": "wards within the district", "by": ["indicator_id", "period_start", "breakdown"],
                        "column": "geography_type", "total": "district", "members": ["ward"]})
    for prefix, members in (("sex:", sexes), ("age:", ages)):
        if members and rng.random() < 0.8:
            m = {"name": f"{prefix} within persons", "by": ["indicator_id", "period_start", "geography_type", "geography_code"],
                 "column": "breakdown", "total": "persons"}
            if rng.random() < 0.5:
                m["members_prefix"] = prefix
            else:
                m["members"] = [f"{prefix}{x}" for x in members]
            margins.append(m)
    return rows, margins
