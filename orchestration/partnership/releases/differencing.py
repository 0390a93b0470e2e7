"""Differencing across releases: a cell, once sent to a recipient, is held.

A recipient keeps every release. If a cell's figures could change from one release to the next,
the change itself would be a count: one late referral moving a ward's figures tells the board
that one child was referred there, however well each release is protected on its own (with
rounding, a step from 10 to 15 pins the count at the boundary). So every cell the recipient's
ledger holds is published again exactly as it was first sent (value, suppression, rounding base,
derived figures), and only cells it has never been sent are computed afresh. Indicators cover
complete periods only, so a cell is first sent when its period has closed; records that arrive
later for a period already sent reach the recipient only through the cells that are new (a
quarter or a pooled period not yet published). The audit's attacker checks that no such new cell,
combined with the held ones, reveals a change.

Held cells are published figures the new cells' secondary suppression must live with: it runs
again with them fixed, so it hides new cells, not held ones.
"""

from __future__ import annotations

import polars as pl

import orchestration.partnership.releases.disclosure as disclosure
import orchestration.partnership.releases.structure as structure
from orchestration.partnership.releases.ledger import aligned, cell_keys, key_columns


def as_held(out: dict, exact: pl.DataFrame, latest: pl.DataFrame) -> pl.DataFrame:
    """`exact` (a table's counts before disclosure control) with each cell the recipient holds carrying
    the counts its held figures were computed from instead of tonight's: what the published figures
    describe. Cells computed from it (a pooled period adding up held quarters) then agree with what the
    recipient holds, and a late record in a held quarter reaches no new figure through them."""
    counts = out.get("counts", [])
    if exact.height == 0 or latest is None or latest.height == 0 or not counts:
        return exact
    mine = latest.filter((pl.col("table_name") == out["table"]) & pl.col("figure").is_in(counts))
    if mine.height == 0:
        return exact
    was = {(c, f): t for c, f, t in mine.select("cell", "figure", "figure_true_value").iter_rows()}
    cells = cell_keys(exact, key_columns(out))
    held = [all((c, f) in was for f in counts) for c in cells]
    if not any(held):
        return exact
    updates = []
    for f in counts:
        whole = exact.schema[f].is_integer()
        values = [(int(round(was[(c, f)])) if whole else was[(c, f)]) if h and was[(c, f)] is not None else v
                  for c, h, v in zip(cells, held, exact[f].to_list())]
        updates.append(pl.Series(f, values, dtype=exact.schema[f]))
    return exact.with_columns(updates)


def hold(protocol, out: dict, protected: pl.DataFrame, truth: pl.DataFrame, latest: pl.DataFrame,
         parents: dict[str, str] | None = None) -> tuple[pl.DataFrame, dict[tuple[str, str, str], float]]:
    """`protected` (the table after disclosure control) with every cell the recipient holds
    (`latest`: `ledger.latest`) carrying its held figures, and the new cells' secondary suppression
    run again around them. `truth`: the counts before disclosure control, matched on the key
    columns. `parents`: area -> the area it lies within (`protection.area_parents`). Returns the table and, per held count figure, the count it was computed from
    ((table, cell, figure) -> count) for the ledger."""
    counts, derived = out.get("counts", []), out.get("derived_from_counts", [])
    if protected.height == 0 or latest.height == 0 or not counts:
        return protected, {}
    mine = latest.filter(pl.col("table_name") == out["table"])
    if mine.height == 0:
        return protected, {}
    cells = cell_keys(protected, key_columns(out))
    state = {(c, f): (v, s, b, t) for c, f, v, s, b, t in
             mine.select("cell", "figure", "value", "suppressed", "rounding_base", "figure_true_value").iter_rows()}
    held = [all((c, f) in state for f in counts) for c in cells]
    if not any(held):
        return protected, {}
    df = _refit(protocol, out, protected, aligned(protected, truth, out), held, cells, state, parents)
    cols: dict[str, list] = {}
    held_truth = {}
    for f in counts + derived:
        values = df[f].to_list()
        flags = df[f"{f}_suppressed"].to_list() if f in counts else None
        bases = df[f"{f}_rounding_base"].to_list() if f in counts else None
        for i, c in enumerate(cells):
            if not held[i] or (c, f) not in state:
                continue
            v, s, b, t = state[(c, f)]
            values[i] = v
            if f in counts:
                flags[i] = bool(s)
                if b is not None:  # what the figure was sent with (a pooled sum's base, say)
                    bases[i] = int(b)
                held_truth[(out["table"], c, f)] = t
        cols[f] = values
        if flags is not None:
            cols[f"{f}_suppressed"] = flags
            cols[f"{f}_rounding_base"] = bases
    updates = [pl.Series(name, vals, dtype=df.schema[name]) if df.schema[name] != pl.Int64
               else pl.Series(name, [None if v is None else int(v) for v in vals], dtype=pl.Int64)
               for name, vals in cols.items()]
    df = df.with_columns(updates)
    if derived and "derived_withheld" in df.columns:
        df = df.with_columns(pl.any_horizontal([pl.col(f"{c}_suppressed") for c in counts]).alias("derived_withheld"))
    return df, held_truth


def _refit(protocol, out: dict, protected: pl.DataFrame, raw: pl.DataFrame, held: list[bool], cells: list[str],
           state: dict, parents: dict[str, str] | None = None) -> pl.DataFrame:
    # `raw`: the true counts in `protected`'s row order (nulls where unknown: never chosen to hide)
    """Secondary suppression of the new cells again, with the held cells as the recipient has them:
    a held suppressed cell counts as hidden, a held published one as known and is never chosen to be
    hidden (it is out already). New cells keep what they had and may lose more to suppression; a
    row with a newly hidden count has its derived figures withheld too."""
    counts, derived = out.get("counts", []), out.get("derived_from_counts", [])
    # the same relations as the first protection: the declared margins and the table's structure
    equations = structure.unique(disclosure.margin_equations(protected, protocol.margins)
                                 + structure.equations(protected, counts, derived, parents))
    if not equations:
        return protected
    hidden_now = [False] * protected.height
    updates = []
    for f in counts:
        truth = raw[f].to_list()
        before = protected[f"{f}_suppressed"].to_list()
        start = [bool(state[(c, f)][1]) if h else b for c, h, b in zip(cells, held, before)]
        choose = [None if h else t for h, t in zip(held, truth)]  # a held figure is not a candidate to hide
        flags = disclosure.secondary(choose, start, equations)
        flags = [s if h else bool(n) for s, h, n in zip(start, held, flags)]
        newly = [n and not b and not h for n, b, h in zip(flags, before, held)]
        hidden_now = [a or b for a, b in zip(hidden_now, newly)]
        updates += [pl.Series(f"{f}_suppressed", [n if not h else b for n, h, b in zip(flags, held, before)], dtype=pl.Boolean),
                    pl.when(pl.lit(pl.Series(newly))).then(None).otherwise(pl.col(f)).alias(f)]
    df = protected.with_columns(updates)
    if derived and any(hidden_now):
        mask = pl.lit(pl.Series(hidden_now))
        df = df.with_columns([pl.when(mask).then(None).otherwise(pl.col(d)).alias(d) for d in derived])
    return df
