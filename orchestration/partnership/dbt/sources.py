"""dbt sources written from the contracts, so the contract stays the one source of truth.

`partnership contracts sources` rewrites dbt_project/models/staging/_sources.yml; a test
fails when the committed file differs from what the contracts say.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from orchestration.partnership.contracts.model import Contract

HEADER = "# Generated from contracts/agencies by `partnership contracts sources`. Do not edit by hand.\n"


def _column(c) -> dict:
    if c.classification == "direct_identifier":
        entry = {"name": _name(c), "description": f"{c.description} Pseudonymised: keyed HMAC-SHA256 of the normalised value."}
    else:
        entry = {"name": c.name, "description": c.description}
    entry["meta"] = {"classification": c.classification, "logical_type": c.logical_type}
    return entry


def _name(c) -> str:
    return f"{c.name}_pseudo" if c.classification == "direct_identifier" else c.name


def sources_yaml(contracts: dict[str, Contract]) -> str:
    tables = []
    for cid in sorted(contracts):
        c = contracts[cid]
        tables.append({
            "name": c.table,
            "description": f"{c.title}. Valid rows of accepted deliveries ({c.delivery.mode}, {c.delivery.cadence}); contract {c.id} v{c.version}.",
            "meta": {"agency": c.agency, "extract": c.extract, "contract": c.id, "mode": c.delivery.mode, "owner": c.owner_role},
            # The contract's required columns, with the delivery and row, in one test of the table.
            "data_tests": [{"not_null_columns": {"arguments": {
                "columns": ["_delivery_id", "_row_number"] + [_name(col) for col in c.columns if col.required]}}}],
            "columns": [
                {"name": "_delivery_id", "description": "The delivery (ops.deliveries) the row came in."},
                {"name": "_row_number", "description": "The row's number among the data rows of its file."},
            ] + [_column(col) for col in c.columns],
        })
    doc = {"version": 2, "sources": [{
        "name": "valid", "schema": "valid",
        "description": "Contract-valid rows of every agency extract, typed, direct identifiers pseudonymised.",
        # A delivery's rows are written once, as it is accepted, and removed only with it (retention):
        # the build plan fingerprints these tables by their rows' keys (dbt/runner.py).
        "meta": {"fingerprint": "keys"},
        "tables": tables,
    }]}
    return HEADER + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=120)


def write_sources(contracts: dict[str, Contract], dbt_project_dir: Path) -> Path:
    path = dbt_project_dir / "models" / "staging" / "_sources.yml"
    path.write_text(sources_yaml(contracts))
    return path
