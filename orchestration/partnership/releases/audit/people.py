"""The audit's checks of person-level rows: every pseudonym is this recipient's own and no other
recipient's (in this release or any other sent), no health-derived row of a person with a
national data opt-out, and no row without the consent a protocol requires."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import polars as pl

from orchestration.partnership import catalogue
from orchestration.partnership.releases.audit.identifiers import columns_holding
from orchestration.partnership.releases.audit.zone import (
    Zone,
    derived_key,
    pseudonymiser,
)
from orchestration.partnership.releases.protocols import Protocol

HEX64 = re.compile(r"^[0-9a-f]{64}$")


def _recipients(protocols_dir: Path) -> list[tuple[str, str, str]]:
    """(recipient id, level, pseudonym context) of every protocol in `protocols_dir`."""
    return [(p.recipient_id, p.level, p.pseudonym_context) for p in catalogue.protocols(protocols_dir).values()]


def check_people(protocol: Protocol, out: dict, df: pl.DataFrame, zone: Zone | None, key: bytes | None,
                  releases_dir: Path | None, problems: list[str]) -> None:
    """Pseudonyms are this recipient's own, differ from every other recipient's, and exclude
    opted-out people from health-derived rows; consent rules hold."""
    t = out["table"]
    pseudonyms = out.get("pseudonyms") or {}
    for col in pseudonyms:
        bad = df.filter(pl.col(col).is_not_null() & ~pl.col(col).str.contains(HEX64.pattern)).height
        if bad:
            problems.append(f"{t}.{col}: {bad} values are not pseudonyms")
    if not pseudonyms and not out.get("opt_out") and not out.get("consent"):
        return
    if zone is None or key is None or not zone.has_persons:
        problems.append(f"{t}: person-level rows cannot be verified without the warehouse, its person index and the key")
        return
    ctx = protocol.pseudonym_context
    mine_of = pseudonymiser(key, ctx)
    others = sorted({c for rid, level, c in _recipients(protocol.path.parent)
                     if rid != protocol.recipient_id and level != "aggregate"})
    # per pseudonymised source column: its ids and this recipient's pseudonym of each (`mine`); the
    # opt-out and consent checks below look their ids up here instead of hashing them again
    mine_by: dict[str, pl.DataFrame] = {}
    all_mine: dict[str, bool] = {}  # column -> every released value is the pseudonym of a source id
    for col, src in pseudonyms.items():
        released = df[col].drop_nulls().unique()
        # Every released value must be the pseudonym of an id the source holds (of a person or household
        # the index knows): the pseudonyms of the source's ids, not of the whole county's, are computed.
        # A clash with another recipient's pseudonym of an id outside the source would need an HMAC
        # collision between two keys; the same context is caught on the source's own ids.
        hashed = zone.hashed_ids(out["source"], src, key, {"mine": ctx})
        mine_by[src] = hashed
        not_mine = int((~released.is_in(hashed["mine"])).sum())
        all_mine[col] = not not_mine
        if not_mine:
            problems.append(f"{t}.{col}: {not_mine} values are not this recipient's pseudonyms")
        if released.is_in(hashed["id"]).any():
            problems.append(f"{t}.{col}: internal ids released in place of pseudonyms")
        for other in others:
            if all_mine[col]:
                # Every released value is this recipient's HMAC of a source id: it can equal another
                # recipient's HMAC of a source id only if the two derived keys are the same, or by an
                # HMAC collision between two keys (as for ids outside the source). The keys are
                # compared, and the other recipient's pseudonyms are not computed.
                clash = released.len() if derived_key(key, other) == derived_key(key, ctx) else 0
            else:  # blocked already: the clashes are counted too, to say so
                theirs = pseudonymiser(key, other)
                clash = int(released.is_in(pl.Series([theirs(i) for i in hashed["id"].to_list()], dtype=pl.Utf8)).sum())
            if clash:
                problems.append(f"{t}.{col}: {clash} pseudonyms equal another recipient's")
    if releases_dir is not None and pseudonyms:
        released = set().union(*({v for v in df[c].to_list() if v is not None} for c in pseudonyms))
        for other_manifest in Path(releases_dir).glob("*/*/manifest.json"):
            m = json.loads(other_manifest.read_text())
            if m["protocol"].get("recipient_id") == protocol.recipient_id or m["protocol"]["level"] == "aggregate":
                continue
            for pq in (other_manifest.parent / "parquet").glob("*.parquet"):
                for c in columns_holding(pl.read_parquet(pq), released):
                    problems.append(f"{t}: pseudonyms also appear in {m['protocol']['id']}'s release "
                                    f"{m['release_date']} ({pq.name}.{c})")
    oo = out.get("opt_out")
    if oo:
        col = next((c for c, s in pseudonyms.items() if s == oo["person_column"]), None)
        agency = oo.get("agency_column", "agency")
        if col is None or (agency not in df.columns and not oo.get("applies_to_all_rows")):
            problems.append(f"{t}: the opt-out rule cannot be verified (its person or agency column is not released)")
        else:
            if all_mine[col]:
                # every released value is the pseudonym of a source id (else the release is blocked
                # above): the opted-out people who can appear are those among the source's ids
                of_source = mine_by[oo["person_column"]]
                opted = set(of_source.filter(pl.col("id").is_in(zone.opted_out))["mine"].to_list())
            else:
                opted = {mine_of(p) for p in zone.opted_out}
            scope = df if oo.get("applies_to_all_rows") else df.filter(pl.col(agency).is_in(oo["health_derived_agencies"]))
            bad = scope.filter(pl.col(col).is_in(list(opted))).height
            if bad:
                problems.append(f"{t}: {bad} health-derived rows of people with a national data opt-out")
    for rule in out.get("consent") or []:
        agency = rule.get("agency_column", "agency")
        person_src = (out.get("opt_out") or {}).get("person_column", "person_id")
        col = next((c for c, s in pseudonyms.items() if s == person_src), None)
        if col is None or agency not in df.columns:
            problems.append(f"{t}: the consent rule cannot be verified (its person or agency column is not released)")
            continue
        marks = ", ".join("?" for _ in rule["agencies"])
        rows = zone.source_rows(f'''select cast("{person_src}" as varchar), count(*) from {out["source"]}
                                    where "{agency}" in ({marks}) and "{rule["column"]}" is true group by 1''',
                                rule["agencies"])
        of_source = mine_by.get(person_src)
        known = dict(of_source.filter(pl.col("id").is_in([p for p, _ in rows])).iter_rows()) if of_source is not None else {}
        consented = Counter({known.get(p) or mine_of(p): n for p, n in rows})
        shown = Counter(df.filter(pl.col(agency).is_in(rule["agencies"]))[col].to_list())
        bad = sum(max(0, n - consented.get(p, 0)) for p, n in shown.items())
        if bad:
            problems.append(f"{t}: {bad} rows from {', '.join(rule['agencies'])} without consent to share")
