"""Closing what rounding leaves open: further suppression until the attacker proves nothing.

Secondary suppression (`disclosure.secondary`) makes sure no hidden count can be solved from the
relations as equations. With rounding, a recipient can still bound a hidden count: May's 65–79
is May's persons (published 20: 18–22) less May's 80+, and May's 80+ is at most its quarter
(published 10: 10–12), so May's 65–79 is at least 6 — not zero, perhaps small. Such bounds need
linear programming over the whole holding, which is what the audit's attacker does
(`audit/attack.py`). So the builder asks the same attacker, on the recipient's holding and the
release as built, which counts it can bound, and hides more: for a hidden count proven not to be
zero (or proven zero), the published totals it is part of (its published members when those
are all hidden; else the published cells nearest to it through hidden ones); for a rounded count
pinned, the count itself; for a rounded count narrowed (`full_interval`: a total and its parts
rounded apart), a part of the relation that narrows it (`_unbind`; relations that do so on their
own are found first, without the attacker: `_disagreeing`); for a count in a cell the release does
not carry (sent before, by any protocol to the same recipient), this release's cells related to
it. It repeats until the attacker finds nothing or no new cell can be hidden (cells the
recipient already holds are never hidden: they are out); each later round starts from the whole
points the earlier ones found (`nearby.Witnesses`), checked again before use. The audit runs the
attacker again on the files as written and blocks the release if anything is left; the attacker
itself is tested against a brute-force recipient (tests/oracles/holding.py).
"""

from __future__ import annotations

import json

import polars as pl

import orchestration.partnership.releases.disclosure as disclosure
import orchestration.partnership.releases.structure as structure
from orchestration.partnership.releases import ledger
from orchestration.partnership.releases.audit.attack import NEW_SEQ, allowed, attack
from orchestration.partnership.releases.audit.nearby import Witnesses
from orchestration.partnership.releases.audit.relations import relations

ROUNDS = 12  # `_disagreeing`'s passes; interval arithmetic, each pass cheap
ACTED_ON = ("not_zero", "zero", "pinned", "narrowed")  # `narrowed`: only under full_interval


def close(protocol, tables: dict[str, pl.DataFrame], truth: dict[str, pl.DataFrame], held_truth: dict,
          holding: pl.DataFrame | None, parents: dict[str, str] | None,
          clean: set[str] | None = None) -> dict[str, pl.DataFrame]:
    """`tables` with more counts hidden until the attacker, given `holding` (`ledger.holding`) and
    the release, finds no count to act on; a row with a newly hidden count has its derived figures
    withheld. `truth` and `held_truth` as for `ledger.figures`. `clean`: blocks the audit found
    clean before (`audit.verdicts`), not attacked again."""
    mode = ((protocol.disclosure or {}).get("attacker") or {}).get("rounded_counts", "full_interval")
    outputs = {o["table"]: o for o in ledger.controlled_outputs(protocol) if o.get("counts") and o["table"] in tables}
    if not outputs:
        return tables
    if mode == "full_interval":
        _disagreeing(protocol, outputs, tables, truth, held_truth, parents)
    touched = None  # the first round examines every block; later ones those holding a cell just hidden
    witnesses = Witnesses()  # hiding only widens the system: earlier rounds' whole points still serve, checked
    # each round but the last hides at least one count more, and a hidden count is never published
    # again: so there are at most as many rounds as counts, and closing never stops with a finding
    # that hiding could still act on (the audit would block the release)
    for _ in range(1 + sum(tables[n].height * len(o["counts"]) for n, o in outputs.items())):
        figs = ledger.figures(protocol, tables, truth, held_truth)
        new = figs.with_columns(pl.lit(NEW_SEQ, dtype=pl.Int64).alias("seq")).select("seq", *ledger.SCHEMA)
        everything = pl.concat([holding.select(new.columns), new]) if holding is not None and holding.height else new
        found = attack(everything, protocol.margins, parents, mode, most=10**6, only=touched, clean=clean,
                       witnesses=witnesses)
        flagged = {(cell, fig): kind for cell, fig, _t, kind in found.flags if kind in ACTED_ON}
        if not flagged:
            break
        flagged.update(_through_held(flagged, new, everything, protocol.margins, parents))
        touched = set()
        for name, out in outputs.items():
            before = tables[name]
            tables[name], hidden = _hide(protocol, out, before, truth.get(name), flagged, held_truth, parents)
            if hidden:
                touched |= _newly_hidden(out, before, tables[name])
        if not touched:
            break
    return tables


def _newly_hidden(out: dict, before: pl.DataFrame, after: pl.DataFrame) -> set[str]:
    """The cells (keys) with a count hidden in `after` that `before` published."""
    cells = ledger.cell_keys(after, ledger.key_columns(out))
    now = [False] * after.height
    for f in out.get("counts", []):
        now = [n or (b is False and a is True) for n, b, a in
               zip(now, before[f"{f}_suppressed"].to_list(), after[f"{f}_suppressed"].to_list())]
    return {c for c, n in zip(cells, now) if n}


def _through_held(flagged: dict, new: pl.DataFrame, everything: pl.DataFrame, margins, parents) -> dict:
    """For a count found in a cell this release does not carry (sent before, by this protocol or another
    to the same recipient: one holding), this release's published cells that share a relation with it
    (as the attacker relates cells: `audit.relations`), each to be hidden (`related`): the figures the
    recipient holds cannot be taken back, so the new ones that bound it go."""
    mine = set(new["cell"].to_list())
    foreign = {(c, f) for (c, f) in flagged if c not in mine}
    out: dict = {}
    for f in {f for _, f in foreign}:
        rows = everything.filter((pl.col("figure") == f) & (pl.col("kind") == "count"))
        cells = {c: json.loads(c) for c in rows["cell"].unique().to_list()}
        published = set(new.filter((pl.col("figure") == f) & (pl.col("kind") == "count") & ~pl.col("suppressed"))["cell"])
        wanted = {c for c, g in foreign if g == f}
        for rel in relations(cells, margins, parents):
            if wanted.intersection((rel.total, *rel.members)):
                out.update({(c, f): "related" for c in (rel.total, *rel.members) if c in published and (c, f) not in flagged})
    return out


def _disagreeing(protocol, outputs: dict, tables: dict[str, pl.DataFrame], truth: dict, held_truth: dict,
                 parents: dict[str, str] | None) -> None:
    """Before the attacker runs: each relation whose cells are all published and which, on its own,
    rules out a value some cell's rounding allows (a total and its members rounded apart) gets a
    member hidden (`_unbind`), until none is left. Interval arithmetic per relation, no linear
    programming: most of what the attacker would find under `full_interval`, found cheaply; it finds
    the rest (narrowing through several relations together)."""
    dc = protocol.disclosure or {}
    low, high = dc.get("suppress_counts_from"), dc.get("suppress_counts_to")
    for name, out in outputs.items():
        for _ in range(ROUNDS):
            df = tables[name]
            counts, derived = out.get("counts", []), out.get("derived_from_counts", [])
            equations = structure.unique(disclosure.margin_equations(df, protocol.margins)
                                         + structure.equations(df, counts, derived, parents))
            exact = ledger.aligned(df, truth.get(name), out)
            cells = ledger.cell_keys(df, ledger.key_columns(out))
            flagged = {}
            for f in counts:
                values, hidden = df[f].to_list(), df[f"{f}_suppressed"].to_list()
                bases = df[f"{f}_rounding_base"].to_list()
                known = exact[f].to_list() if exact is not None else [None] * df.height
                for t, ms in equations:
                    if not any(hidden[c] or values[c] is None for c in (t, *ms)) \
                            and _narrows(t, ms, values, bases, known, low, high):
                        flagged[(cells[t], f)] = "narrowed"
            if not flagged:
                break
            tables[name], changed = _hide(protocol, out, df, truth.get(name), flagged, held_truth, parents)
            if not changed:
                break


def _hide(protocol, out: dict, df: pl.DataFrame, truth: pl.DataFrame | None, flagged: dict, held_truth: dict,
          parents: dict[str, str] | None) -> tuple[pl.DataFrame, bool]:
    counts, derived = out.get("counts", []), out.get("derived_from_counts", [])
    cells = ledger.cell_keys(df, ledger.key_columns(out))
    row_of = {c: i for i, c in enumerate(cells)}
    mine = [(row_of[c], f, k) for (c, f), k in flagged.items() if c in row_of and f in counts]
    if not mine:
        return df, False
    equations = structure.unique(disclosure.margin_equations(df, protocol.margins)
                                 + structure.equations(df, counts, derived, parents))
    exact = ledger.aligned(df, truth, out)
    dc = protocol.disclosure or {}
    held = {(c, f) for (tname, c, f) in held_truth if tname == out["table"]}
    totals_of: dict[int, list[int]] = {}
    of_cell: dict[int, list[tuple[int, list[int]]]] = {}  # row -> the equations it is in, in order
    for t, ms in equations:
        for m in ms:
            totals_of.setdefault(m, []).append(t)
        for c in dict.fromkeys((t, *ms)):
            of_cell.setdefault(c, []).append((t, ms))
    hide: dict[str, set[int]] = {f: set() for f in counts}
    free_of: dict[str, set[int]] = {}  # per count: the rows that can still be hidden
    for i, f, kind in mine:
        hidden = df[f"{f}_suppressed"]
        if kind in ("pinned", "related"):
            hide[f].add(i)
        elif kind == "narrowed":
            hide[f].update(_unbind(i, df, f, of_cell.get(i, []), exact, dc.get("suppress_counts_from"), dc.get("suppress_counts_to"),
                                   lambda c, f=f: (cells[c], f) not in held))
        else:  # a hidden count bounded through the totals it is part of: hide them too; when they
            # are all hidden or held already, through its own members: hide those; else the nearest
            # cells that can still be hidden
            if f not in free_of:
                free_of[f] = {c for c, h in enumerate(hidden.to_list()) if not h and (cells[c], f) not in held}
            free = free_of[f]
            more = {t for t in totals_of.get(i, []) if t in free}
            if not more:
                more = {m for t, ms in of_cell.get(i, []) if t == i for m in ms if m in free}
            hide[f].update(more or _ring(i, equations, free))
    changed = [False] * df.height
    updates = []
    for f in counts:
        rows = {i for i in hide[f] if (cells[i], f) not in held}
        if not rows:
            continue
        before = df[f"{f}_suppressed"].to_list()
        flags = list(before)
        for i in rows:
            flags[i] = True
        # and secondary suppression again, so that no newly hidden total is solved from published members
        # (a held or unknown count is never chosen: None)
        choose = [None if (c, f) in held or exact is None else t for c, t in zip(cells, exact[f].to_list())]
        flags = [bool(x) for x in disclosure.secondary(choose, flags, equations)]
        values = df[f].to_list()
        for i, (was, now) in enumerate(zip(before, flags)):
            if now and not was:
                values[i], changed[i] = None, True
        updates += [pl.Series(f, values, dtype=df.schema[f]), pl.Series(f"{f}_suppressed", flags, dtype=pl.Boolean)]
    if not updates:
        return df, False
    df = df.with_columns(updates)
    if derived:
        mask = pl.lit(pl.Series(changed))
        df = df.with_columns([pl.when(mask).then(None).otherwise(pl.col(d)).alias(d) for d in derived])
        if "derived_withheld" in df.columns:
            df = df.with_columns(pl.any_horizontal([pl.col(f"{c}_suppressed") for c in counts]).alias("derived_withheld"))
    return df, True


def _ring(i: int, equations: list[tuple[int, list[int]]], free: set[int]) -> set[int]:
    """The `free` cells (published, not held) nearest to hidden row `i`: those in the relations of the
    cells reachable from `i`, at the first distance where there are any."""
    touching: dict[int, list[int]] = {}
    for e, (t, ms) in enumerate(equations):
        for c in (t, *ms):
            touching.setdefault(c, []).append(e)
    seen, frontier = {i}, {i}
    while frontier:
        rows = {c for r in frontier for e in touching.get(r, []) for c in (equations[e][0], *equations[e][1])}
        published = rows & free
        if published:
            return published
        frontier = rows - seen
        seen |= frontier
    return set()


def _interval(value: float, base: int, low: int, high: int) -> tuple[int, int]:
    """The whole counts a published figure stands for (as the attacker takes it: `allowed`)."""
    return allowed(value, int(base or 1), low, high)


def _unbind(i: int, df: pl.DataFrame, f: str, equations: list[tuple[int, list[int]]],
            exact: pl.DataFrame | None, low: int | None, high: int | None, free) -> set[int]:
    """What to hide for a rounded count `i` that the holding narrows (`full_interval`): rounded
    independently, a total and its members need not agree (persons 25 and sexes 10 + 10 leave 23–24
    for persons, 12 for each sex), and nothing published can make them agree. A hidden member
    absorbs the difference: in each relation of `i` whose cells are all published and which narrows
    them on its own, its largest member is hidden (the one least likely to be small: a hidden count
    proven above the suppression range tells nothing). Narrowed only through several relations
    together: the largest member of its smallest relation with every cell published. In no such
    relation (narrowed through hidden cells): `i` itself. A cell the recipient holds (`free` false) is
    never chosen: then the relation's total, if it is free."""
    values, hidden, bases = df[f].to_list(), df[f"{f}_suppressed"].to_list(), df[f"{f}_rounding_base"].to_list()
    truth = exact[f].to_list() if exact is not None else [None] * df.height
    tight = [(t, ms) for t, ms in equations if i in (t, *ms) and not any(hidden[c] or values[c] is None for c in (t, *ms))]
    if not tight:
        return {i}
    binding = [(t, ms) for t, ms in tight if _narrows(t, ms, values, bases, truth, low, high)]
    chosen = binding or [min(tight, key=lambda e: (len(e[1]), e[0]))]
    out = set()
    for t, ms in chosen:
        candidates = [m for m in ms if free(m)] or [c for c in (t,) if free(c)]
        if candidates:
            out.add(max(candidates, key=lambda m: (values[m], -m)))
    return out


def _narrows(t: int, ms: list[int], values: list, bases: list, truth: list, low, high) -> bool:
    """Whether `total = Σ members` (or the inequality the true counts keep) on its own rules out a value
    the rounding of one of its cells allows."""
    iv = [_interval(values[c], bases[c], low, high) for c in (t, *ms)]
    (tl, th), rest = iv[0], iv[1:]
    sl, sh = sum(x[0] for x in rest), sum(x[1] for x in rest)
    known = [truth[c] for c in (t, *ms)]
    d = None if any(k is None for k in known) else known[0] - sum(known[1:])
    eq_or_ge, eq_or_le = d is None or d > -0.5, d is None or d < 0.5
    out = False
    if eq_or_ge:  # total ≥ Σ members
        out |= tl < sl or any(th - (sl - x[0]) < x[1] for x in rest)
    if eq_or_le:  # total ≤ Σ members
        out |= th > sh or any(tl - (sh - x[1]) > x[0] for x in rest)
    return out
