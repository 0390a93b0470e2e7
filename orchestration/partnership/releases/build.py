"""Building: a protocol's tables and the files of its release folder.

The tables from the scoped rows (`scope`): pseudonyms made (the only place a release's are),
disclosure control applied; then the folder's files (DuckDB, Parquet, data dictionary, data
quality, manifest with every file's sha256, the deliveries it was built from and the release
log's head it is anchored to; the manifest's signature, `manifest.sig`).
"""

from __future__ import annotations

import hashlib
import json
from datetime import date, timedelta
from pathlib import Path

import duckdb
import polars as pl

import orchestration.partnership.boardpack.quality as data_quality
import orchestration.partnership.releases.facts as facts
import orchestration.partnership.releases.protection as protection
import orchestration.partnership.warehouse.pseudonymise as ps
from orchestration.partnership import catalogue
from orchestration.partnership.releases import ledger, signing
from orchestration.partnership.releases.dictionary import (
    MODEL_DOCS,
    data_dictionary,
    model_doc_name,
    model_documentation,
)
from orchestration.partnership.releases.protocols import Protocol
from orchestration.partnership.releases.scope import quote, scope_once, scoped_select
from orchestration.partnership.warehouse.files import sha256_file


def from_scoped(protocol: Protocol, out: dict, key: bytes, scoped: str) -> tuple[str, dict]:
    """A person-level output's rows from its scoped rows: pseudonyms made (HMAC-SHA256 keyed per
    recipient, the only place a release's pseudonyms are made), ordered."""
    pseudonyms = out.get("pseudonyms") or {}
    ipad, opad = ps.hmac_pads(key, protocol.pseudonym_context)
    select = [f"case when t.{quote(c)} is null then null else {ps.hmac_sql(f't.{quote(c)}')} end as {quote(c)}"
              if c in pseudonyms else f"t.{quote(c)}" for c in out["columns"]]
    return f"select {', '.join(select)} from {scoped} t order by all", ({"ipad": ipad, "opad": opad} if pseudonyms else {})


def build_tables(con: duckdb.DuckDBPyConnection, protocol: Protocol, key: bytes | None = None,
                 scoped: dict[str, str] | None = None, figures: list[pl.DataFrame] | None = None
                 ) -> dict[str, pl.DataFrame]:
    """The protocol's outputs, read from the warehouse: allowed rows and columns only, generalised,
    pseudonymised per recipient, identified only as the protocol names, disclosure-controlled,
    every cell the recipient already holds sent again as first sent (`differencing`).
    `scoped`: person-level outputs' rows already read by `scope_once` on this connection (read
    here when not given). `figures`: when given, gets the release's ledger rows (`ledger.figures`:
    each figure with the count behind it), for the audit and for the ledger on publication."""
    if scoped is None:
        scoped = scope_once(con, protocol, key)
    holding = ledger.latest(con, protocol.recipient_id) if ledger.controlled_outputs(protocol) else None
    truth, held_truth = {}, {}
    tables, controlled = {}, {}
    for out in protocol.outputs:
        if out["table"] in scoped:
            sql, named = from_scoped(protocol, out, key, scoped[out["table"]])
        else:
            sql, named = scoped_select(con, protocol, out, key)
            sql += " order by all"
        df = con.sql(sql, params=named).pl()
        if protocol.level == "aggregate" and (out.get("counts") or out.get("derived_from_counts")):
            controlled[out["table"]] = df
        tables[out["table"]] = df
    # disclosure control over all of them at once (a cell in two tables is one figure), every cell the
    # recipient already holds sent again as first sent, then closed against its whole holding
    if controlled:
        history = ledger.holding(con, protocol.recipient_id) if holding is not None and holding.height else None
        protected, truth, held_truth = protection.against_holding(con, protocol, controlled, holding, history)
        tables.update(protected)
    if figures is not None:
        figures.append(ledger.figures(protocol, tables, truth, held_truth))
    return tables


def write_folder(folder: Path, protocol: Protocol, tables: dict[str, pl.DataFrame], lineage: list[dict],
                 quality: dict | None, release_date: date, anchor: tuple[int, str] | None = None,
                 secret: bytes | None = None) -> dict:
    """Write the release's files into the new `folder` (made here); its manifest. `anchor`: the
    release log's head (seq, entry hash) as the release is built, recorded in the manifest;
    `secret`: the key the manifest is signed with (`manifest.sig`, `signing.sign_manifest`)."""
    (folder / "parquet").mkdir(parents=True)
    with duckdb.connect(str(folder / f"{protocol.id}.duckdb")) as out:
        for name, df in tables.items():
            out.register("_df", df)
            out.execute(f'create table "{name}" as select * from _df')
            out.unregister("_df")
    for name, df in tables.items():
        # uncompressed: what leaves can be read (and scanned for identifiers) byte for byte
        df.write_parquet(folder / "parquet" / f"{name}.parquet", statistics=False, compression="uncompressed")
    (folder / "data_dictionary.md").write_text(data_dictionary(protocol, tables))
    extra_files = {}
    (folder / MODEL_DOCS).mkdir()
    for source in sorted({out["source"] for out in protocol.outputs}):
        rel = f"{MODEL_DOCS}/{model_doc_name(source)}"
        (folder / rel).write_text(model_documentation(source))
        extra_files[rel] = sha256_file(folder / rel)
    if quality is not None:
        (folder / data_quality.DATA_QUALITY_FILE).write_text(json.dumps(quality, indent=2, sort_keys=True) + "\n")
        extra_files[data_quality.DATA_QUALITY_FILE] = sha256_file(folder / data_quality.DATA_QUALITY_FILE)
    parquet_hashes = {f"parquet/{n}.parquet": sha256_file(folder / "parquet" / f"{n}.parquet") for n in sorted(tables)}
    content = hashlib.sha256(json.dumps(parquet_hashes, sort_keys=True).encode()).hexdigest()
    manifest = {
        "protocol": {"id": protocol.id, "version": protocol.version, "level": protocol.level,
                     "recipient": protocol.doc["recipient"]["name"], "recipient_id": protocol.recipient_id,
                     # the protocol text it was made under, and the text signed (the agreement register compares them)
                     "text_sha256": protocol.text_sha256,
                     "signed_text_sha256": (protocol.doc.get("signature") or {}).get("text_sha256")},
        "release_date": release_date.isoformat(),
        "period": _period(tables),
        "retention": {"recipient_copy_days": protocol.doc["retention"]["recipient_copy_days"],
                      "delete_by": (release_date + timedelta(days=protocol.doc["retention"]["recipient_copy_days"])).isoformat()},
        "content_sha256": content,
        "row_counts": {n: df.height for n, df in sorted(tables.items())},
        "files": {**parquet_hashes, f"{protocol.id}.duckdb": sha256_file(folder / f"{protocol.id}.duckdb"),
                  "data_dictionary.md": sha256_file(folder / "data_dictionary.md"), **extra_files},
        "lineage": {"deliveries": lineage},
    }
    if anchor is not None:
        manifest["anchor"] = {"release_log_seq": anchor[0], "release_log_head": anchor[1]}
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    if secret is not None:
        (folder / signing.SIGNATURE_FILE).write_text(
            signing.sign_manifest(secret, (folder / "manifest.json").read_bytes()) + "\n")
    return manifest


def _period(tables: dict[str, pl.DataFrame]) -> dict:
    """The first and last day the release's rows cover (from period or month columns)."""
    lo, hi = [], []
    for df in tables.values():
        for start, end in (("period_start", "period_end"), ("event_month", "event_month"), ("month_start", "month_start")):
            if start in df.columns and df.height:
                lo.append(df[start].min())
                hi.append(df[end if end in df.columns else start].max())
    lo, hi = [x for x in lo if x is not None], [x for x in hi if x is not None]
    return {"from": min(lo).isoformat() if lo else None, "to": max(hi).isoformat() if hi else None}


def lineage(con: duckdb.DuckDBPyConnection, protocol: Protocol) -> list[dict]:
    """The accepted deliveries of the protocol's controllers (contract, file, sha256), for the manifest."""
    agencies = protocol.doc["controllers"]
    rows = con.execute(
        f"""select contract_id, file_name, sha256 from ops.deliveries
            where status = 'accepted' and agency in ({", ".join("?" for _ in agencies)})
            order by contract_id, file_name""",
        agencies,
    ).fetchall()
    return [{"contract": c, "file": f, "sha256": s} for c, f, s in rows]


def data_quality_facts(con: duckdb.DuckDBPyConnection, protocol: Protocol, release_date: date) -> dict:
    """Hook: the board pack's data-quality facts (agency-level counts from ops.deliveries)."""
    from orchestration.partnership.settings import get_settings

    found = data_quality.for_release(con, protocol.id, protocol.doc["controllers"],
                                     catalogue.contracts(get_settings().contracts_dir), release_date)
    dc = protocol.disclosure
    # its row counts are counts of records about people: protected like the tables' counts
    return facts.protect_quality(found, dc["suppress_counts_from"], dc["suppress_counts_to"], dc["rounding_base"])

