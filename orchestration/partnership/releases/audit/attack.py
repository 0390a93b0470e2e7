"""The attacker inside the audit: what a recipient can work out from everything it holds.

Input: the recipient's holding (its ledger rows and the new release's figures, as `ledger`
shapes them). Every published count becomes an unknown with its uncertainty: a count published
r with rounding base b lies in [r − b/2, r + b/2) without the suppressed range; a suppressed count
is any count ≥ 0; a published rate (`value`, unit percent or 'per N') that the published counts
do not explain ties its numerator and denominator (v × denominator = k × numerator). The relations
are derived from the cells' keys (`relations`), each one an equation where it is true of
the data, or the inequality that is. The same figure in two tables or two releases is one unknown
while its count is unchanged; a count that changed is a new unknown, and the change is checked.

Then, per independent block of unknowns (connected through relations), linear programming with
HiGHS bounds what the attacker can prove, over the integers (`solve`: a whole point near the
relaxation's, `nearby`, or `scipy.optimize.milp`, where the relaxation's answer is not whole); a
block found clean before, unchanged, is not attacked again (`verdicts`). A finding, which blocks
the release:

- a suppressed count proven not to be zero while it may still be small (its least possible value
  within the suppression range: the recipient tells 0 from 1–7), or proven zero (pinned). A hidden
  count proven above the suppression range (a total hidden to protect a small member, whose other
  members are published) reveals no small count: the recipient learns only that it was not small;
- a rounded count narrowed to fewer values than its rounding allows;
- a change in a count between two releases that the holding proves (the change is a count of
  new events);
- figures that contradict each other.

Findings name cells and relations, never figures. This module does not use the release
builder's code.
"""

from __future__ import annotations

import bisect
import json
import math
import time
from collections import defaultdict

import numpy as np
import polars as pl

from orchestration.partnership.releases.audit import nearby, verdicts
from orchestration.partnership.releases.audit.relations import describe, multiplier, relations
from orchestration.partnership.releases.audit.solve import CAP, Attack, block

NEW_SEQ = 2**62  # the release being audited, after every release of the ledger


def allowed(value: float, base: int, low: int | None, high: int | None) -> tuple[int, int]:
    """The whole counts a figure published `value` with rounding `base` can stand for (half up:
    r − b/2 ≤ x < r + b/2), without the suppressed range (a count there would not be published)."""
    lo, hi = math.ceil(value - base / 2), math.ceil(value + base / 2) - 1
    lo = max(lo, 0)
    if low is not None and high is not None and lo <= high and hi >= low:
        if lo >= low:
            lo = high + 1
        elif hi <= high:
            hi = low - 1
    return lo, hi


class _Model:
    def __init__(self):
        self.index: dict[tuple, int] = {}
        self.keys: list[tuple] = []

    def var(self, cell: str, fig: str, truth) -> int:
        k = (cell, fig, None if truth is None else float(truth))
        if k not in self.index:
            self.index[k] = len(self.keys)
            self.keys.append(k)
        return self.index[k]


def attack(holding: pl.DataFrame, margins: list[dict] | None = None, parents: dict[str, str] | None = None,
           rounded: str = "full_interval", most: int | None = None, only: set[str] | None = None,
           clean: set[str] | None = None, witnesses: nearby.Witnesses | None = None) -> Attack:
    """Run the attacker on a holding (columns `seq` and `ledger.SCHEMA`). `rounded`: what must stay
    possible for a rounded count: `full_interval` (every value its rounding allows) or `not_pinned`
    (at least two values). `most`: findings per block before its other cells are left unexamined
    (the audit stops early, the builder wants them all). `only`: examine only the blocks holding one
    of these cells (the builder's next round: nothing changed elsewhere). `clean`: when given, the
    fingerprints of blocks found clean before (`verdicts`): such a block is not attacked again, and
    `result.clean` gets the fingerprint of every block found clean. `witnesses`: whole points kept
    between the builder's rounds (`nearby.Witnesses`), used again where they still hold and added to;
    what is proven does not depend on them."""
    t0 = time.perf_counter()
    result = Attack()
    if holding.height == 0:
        return result
    rows = holding.sort("seq", maintain_order=True)
    counts = rows.filter(pl.col("kind") == "count")
    cells = {c: json.loads(c) for c in counts["cell"].unique().to_list()}
    table_of: dict[str, str] = {}
    model = _Model()
    timeline: dict[tuple[str, str], list[tuple[int, object]]] = defaultdict(list)
    states: dict[tuple[str, str], list[tuple[int, tuple]]] = defaultdict(list)
    figures: dict[int, set[tuple]] = defaultdict(set)
    for seq, table, cell, fig, value, sup, base, low, high, truth, ftruth in counts.select(
            "seq", "table_name", "cell", "figure", "value", "suppressed", "rounding_base", "suppress_from",
            "suppress_to", "true_value", "figure_true_value").iter_rows():
        table_of.setdefault(cell, table)
        line = timeline[(cell, fig)]
        if not line or line[-1][0] != seq:
            line.append((seq, truth))
        v = model.var(cell, fig, ftruth if ftruth is not None else truth)
        figures[v].add((value, bool(sup), base, low, high))
        states[(cell, fig)].append((seq, (v, value, bool(sup))))

    def truth_at(cell: str, fig: str, seq: int):
        line = timeline[(cell, fig)]
        i = bisect.bisect_right(line, seq, key=lambda x: x[0]) - 1
        return line[i][1] if i >= 0 else _ABSENT

    # relations: each template once per snapshot in which one of its counts changed
    eq_rows: dict[tuple, tuple] = {}
    named: dict[int, list[str]] = defaultdict(list)
    for fig in counts["figure"].unique().to_list():
        of_fig = {c: cells[c] for (c, f) in timeline if f == fig}
        for rel in relations(of_fig, margins, parents):
            members = [rel.total, *rel.members]
            seqs = sorted({s for c in members for s, _ in timeline[(c, fig)]})
            start = max(timeline[(c, fig)][0][0] for c in members)
            for s in seqs:
                if s < start:
                    continue
                truths = [truth_at(c, fig, s) for c in members]
                sense = _sense(truths)
                if sense is None:
                    continue
                vs = [model.var(c, fig, t) for c, t in zip(members, truths)]
                _relate(eq_rows, named, sense, vs, f"{rel.name} ({describe(cells[rel.total])})")
                # and among the figures the recipient holds at that point, where the counts they were
                # computed from add up exactly (a new pooled period over quarters held as first sent):
                # a recipient takes figures that should add up to add up
                held = [_state_at(states, c, fig, s) for c in members]
                if all(h is not None for h in held):
                    fvs = [h[0] for h in held]
                    if fvs != vs and _sense([model.keys[v][2] for v in fvs]) == "eq":
                        _relate(eq_rows, named, "eq", fvs, f"{rel.name} ({describe(cells[rel.total])})")
    ratios = _ratios(rows, states, model, cells, named)
    links = []
    for (cell, fig), line in timeline.items():
        known = [(s, t) for s, t in line if t is not None]
        for (s1, t1), (s2, t2) in zip(known, known[1:]):
            if t1 != t2:
                links.append((model.var(cell, fig, t1), model.var(cell, fig, t2)))

    n = len(model.keys)
    result.unknowns = n
    parent = list(range(n))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(vs) -> None:
        r = find(vs[0])
        for v in vs[1:]:
            parent[find(v)] = r

    for sense, t, ms in eq_rows.values():
        union([t, *ms])
    for a, b, *_ in ratios:
        union([a, b])
    for a, b in links:
        union([a, b])

    targets: dict[int, tuple[str, int, int]] = {}
    bounds = np.zeros((n, 2))
    bounds[:, 1] = CAP
    for v, states_v in figures.items():
        _targets(v, states_v, model, cells, table_of, bounds, targets, result)

    comps: dict[int, list[int]] = defaultdict(list)
    for v in range(n):
        comps[find(v)].append(v)
    rel_of: dict[int, list[tuple]] = defaultdict(list)
    for r in eq_rows.values():
        rel_of[find(r[1])].append(r)
    ratio_of: dict[int, list[tuple]] = defaultdict(list)
    for r in ratios:
        ratio_of[find(r[0])].append(r)
    link_of: dict[int, list[tuple]] = defaultdict(list)
    for a, b in links:
        link_of[find(a)].append((a, b))
    for root, vs in comps.items():
        if len(vs) == 1 or not (any(v in targets for v in vs) or link_of.get(root)):
            continue
        if only is not None and not any(model.keys[v][0] in only for v in vs):
            continue
        result.blocks += 1
        fp = None if clean is None else verdicts.fingerprint(vs, rel_of[root], ratio_of[root], link_of[root], bounds,
                                                             targets, model.keys, rounded)
        if fp is not None and fp in clean:
            result.known += 1
            result.clean.add(fp)
            continue
        before = len(result.flags), len(result.findings)
        keys = [model.keys[v] for v in vs]
        found = block(vs, rel_of[root], ratio_of[root], link_of[root], bounds, targets, model, cells, table_of, named,
                      result, rounded, most, None if witnesses is None else witnesses.get(keys))
        if witnesses is not None:
            witnesses.put(keys, found)
        if fp is not None and (len(result.flags), len(result.findings)) == before:
            result.clean.add(fp)
    result.seconds = time.perf_counter() - t0
    return result


_ABSENT = object()


def _relate(eq_rows: dict, named: dict, sense: str, vs: list[int], label: str) -> None:
    key = (sense, vs[0], tuple(sorted(vs[1:])))
    if key not in eq_rows:
        eq_rows[key] = (sense, vs[0], vs[1:])
        for v in vs:
            if len(named[v]) < 3 and label not in named[v]:
                named[v].append(label)


def _sense(truths: list) -> str | None:
    """How a relation holds among these counts: 'eq', 'le' (total ≤ Σ members), 'ge', or None when a
    count is not there; assumed an equation when the counts are not known."""
    if any(t is _ABSENT for t in truths):
        return None
    if any(t is None for t in truths):
        return "eq"
    d = truths[0] - sum(truths[1:])
    return "eq" if abs(d) < 0.5 else ("le" if d < 0 else "ge")


def _ratios(rows: pl.DataFrame, states: dict, model: _Model, cells: dict, named: dict) -> list[tuple]:
    """(numerator unknown, denominator unknown, value, k) for each published `value` the published
    counts do not explain: it ties the counts it was computed from."""
    out = {}
    derived = rows.filter((pl.col("kind") == "derived") & (pl.col("figure") == "value") & pl.col("value").is_not_null())
    for seq, cell, v in derived.select("seq", "cell", "value").iter_rows():
        k = multiplier(cells.get(cell, {}).get("unit")) if cell in cells else None
        if k is None:
            continue
        num, den = _state_at(states, cell, "numerator", seq), _state_at(states, cell, "denominator", seq)
        if num is None or den is None:
            continue
        (vn, pn, sn), (vd, pd, sd) = num, den
        if not sn and not sd and pn is not None and pd and abs(v - k * pn / pd) <= 1e-9 * max(1.0, abs(v)):
            continue  # computed from the published counts: it tells nothing more
        tn, td = model.keys[vn][2], model.keys[vd][2]
        if tn is not None and td is not None and (td == 0 or abs(v - k * tn / td) > 1e-6 * max(1.0, abs(v))):
            continue  # not this ratio of the counts (another method): no equation an attacker could use
        out.setdefault((vn, vd, v), (vn, vd, v, k))
        label = f"rate = numerator / denominator ({describe(cells[cell])})"
        for x in (vn, vd):
            if label not in named[x] and len(named[x]) < 3:
                named[x].append(label)
    return list(out.values())


def _state_at(states: dict, cell: str, fig: str, seq: int):
    line = states.get((cell, fig))
    if not line:
        return None
    i = bisect.bisect_right(line, seq, key=lambda x: x[0]) - 1
    return line[i][1] if i >= 0 else None


def _targets(v: int, states_v: set, model: _Model, cells: dict, table_of: dict, bounds: np.ndarray,
             targets: dict, result: Attack) -> None:
    """Bounds of unknown `v` from its figures, and what must stay possible: (kind, low target, high target)."""
    cell, fig, _ = model.keys[v]
    where = f"{table_of[cell]}.{fig}: {describe(cells[cell])}"
    sets = [allowed(val, int(base or 1), low, high) for val, sup, base, low, high in states_v if not sup and val is not None]
    suppressed = any(sup for _, sup, *_ in states_v)
    if not sets:
        if suppressed:
            # the top of the suppression range: a hidden count proven above it is not a small count
            tops = [high for _, sup, _, _, high in states_v if sup]
            targets[v] = ("suppressed", 0, 1, None if any(t is None for t in tops) else max(tops))
        return
    lo, hi = max(s[0] for s in sets), min(s[1] for s in sets)
    if lo > hi:
        result.findings.append(f"{where}: its published figures contradict each other")
        result.flags.append((*model.keys[v], "contradiction"))
        return
    if suppressed:
        result.findings.append(f"{where}: suppressed in one release or table, published in another")
        result.flags.append((*model.keys[v], "suppressed_and_published"))
    elif any(s != (lo, hi) for s in sets):
        result.findings.append(f"{where}: two of its figures narrow each other below what rounding allows")
        result.flags.append((*model.keys[v], "narrowed"))
    bounds[v] = (lo, hi)
    if lo < hi:  # a published zero is exact by the rules (1 and 2 would be suppressed): nothing to keep
        targets[v] = ("rounded", lo, hi)
