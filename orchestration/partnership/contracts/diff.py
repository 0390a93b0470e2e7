"""Compare two versions of a contract: which changes break a data owner's files or the warehouse.

A change is breaking when a file accepted under the old version could be rejected or have rows
quarantined under the new one (a rule added or tightened: new required column, narrower code
list, new pattern, narrower range, lower row-count ceiling, late deliveries now rejected), or
when what consumers read changes shape (a column removed or renamed, its type or classification
changed). A breaking change needs a new major version; `partnership contracts diff` fails
when it does not have one. `datacontract breaking` (datacontract-cli) gives the standard's
own view of the ODCS fields; this comparison also understands the project's extensions.
"""

from __future__ import annotations

from dataclasses import dataclass

from orchestration.partnership.contracts.model import Contract


@dataclass(frozen=True)
class Change:
    severity: str  # breaking | compatible
    where: str
    what: str


def _major(version: str) -> int:
    try:
        return int(version.split(".")[0])
    except ValueError:
        return 0


def compare(old: Contract, new: Contract) -> list[Change]:
    out: list[Change] = []

    def add(breaking: bool, where: str, what: str) -> None:
        out.append(Change("breaking" if breaking else "compatible", where, what))

    old_cols = {c.name: c for c in old.columns}
    new_cols = {c.name: c for c in new.columns}
    for name in old_cols.keys() - new_cols.keys():
        add(True, f"column {name}", "removed (or renamed): files and consumers that use it break")
    for name in new_cols.keys() - old_cols.keys():
        c = new_cols[name]
        add(c.required or new.format.extra_columns == "reject", f"column {name}",
            "added" + (" as required" if c.required else "") + ": files without it are rejected")
    for name in sorted(old_cols.keys() & new_cols.keys()):
        o, n = old_cols[name], new_cols[name]
        where = f"column {name}"
        if o.logical_type != n.logical_type:
            add(True, where, f"type {o.logical_type} → {n.logical_type}")
        if o.classification != n.classification:
            add(True, where, f"classification {o.classification} → {n.classification} (pseudonymisation and releases change)")
        if n.required and not o.required:
            add(True, where, "now required")
        elif o.required and not n.required:
            add(False, where, "no longer required")
        if n.unique and not o.unique:
            add(True, where, "now unique")
        if o.pattern != n.pattern:
            add(n.pattern is not None, where, f"pattern {o.pattern!r} → {n.pattern!r}")
        if o.date_format != n.date_format:
            add(True, where, f"date format {o.date_format!r} → {n.date_format!r}")
        if o.allowed_values != n.allowed_values:
            removed = set(o.allowed_values or ()) - set(n.allowed_values or ())
            tighter = (n.allowed_values is not None and o.allowed_values is None) or bool(removed and n.allowed_values)
            add(tighter, where, f"allowed values {list(o.allowed_values or [])} → {list(n.allowed_values or [])}")
        for bound, tighter in (("minimum", lambda a, b: b is not None and (a is None or str(b) > str(a))),
                               ("maximum", lambda a, b: b is not None and (a is None or str(b) < str(a)))):
            a, b = getattr(o, bound), getattr(n, bound)
            if a != b:
                numeric = o.logical_type in ("integer", "number") and a is not None and b is not None
                t = (b > a if bound == "minimum" else b < a) if numeric else tighter(a, b)
                add(t, where, f"{bound} {a!r} → {b!r}")
        if (o.min_length, o.max_length) != (n.min_length, n.max_length):
            add((n.max_length or 10**9) < (o.max_length or 10**9) or (n.min_length or 0) > (o.min_length or 0), where,
                f"length {o.min_length}..{o.max_length} → {n.min_length}..{n.max_length}")
        if set(n.checks) - set(o.checks):
            add(True, where, f"checks added {sorted(set(n.checks) - set(o.checks))}")
        if n.not_in_future and not o.not_in_future:
            add(True, where, "now must not be in the future")
    old_rules = {r.name: r for r in old.cross_field_rules}
    for r in new.cross_field_rules:
        if r.name not in old_rules or old_rules[r.name] != r:
            add(True, f"cross-field rule {r.name}", "added or changed")
    for name in old_rules.keys() - {r.name for r in new.cross_field_rules}:
        add(False, f"cross-field rule {name}", "removed")
    if old.key_columns != new.key_columns:
        add(True, "primary key", f"{old.key_columns} → {new.key_columns}")
    of, nf = old.format, new.format
    for attr in ("type", "delimiter", "encoding", "header_row", "sheet", "quote"):
        if getattr(of, attr) != getattr(nf, attr):
            add(True, f"format.{attr}", f"{getattr(of, attr)!r} → {getattr(nf, attr)!r}")
    od, nd = old.delivery, new.delivery
    if od.file_pattern != nd.file_pattern:
        add(True, "delivery.filePattern", f"{od.file_pattern!r} → {nd.file_pattern!r}")
    if od.mode != nd.mode:
        add(True, "delivery.mode", f"{od.mode} → {nd.mode} (downstream models read the extract differently)")
    if (od.due_by, od.due_after_days, od.timezone) != (nd.due_by, nd.due_after_days, nd.timezone):
        add((nd.due_after_days, nd.due_by) < (od.due_after_days, od.due_by), "delivery.due",
            f"{od.due_after_days} day(s) {od.due_by} → {nd.due_after_days} day(s) {nd.due_by}")
    if od.late != nd.late:
        add(nd.late == "reject", "delivery.late", f"{od.late} → {nd.late}")
    if (old.row_count_min, old.row_count_max) != (new.row_count_min, new.row_count_max):
        add((new.row_count_min or 0) > (old.row_count_min or 0) or (new.row_count_max or 10**12) < (old.row_count_max or 10**12),
            "rowCount", f"{old.row_count_min}..{old.row_count_max} → {new.row_count_min}..{new.row_count_max}")
    return out


def version_problem(old: Contract, new: Contract, changes: list[Change]) -> str | None:
    """A breaking change without a new major version, or a changed contract with the same version."""
    if any(c.severity == "breaking" for c in changes) and _major(new.version) <= _major(old.version):
        return f"breaking changes need a new major version ({old.version} → {new.version})"
    if changes and new.version == old.version:
        return f"the contract changed but its version is still {new.version}"
    return None
