"""Which agency contract columns feed a protocol's release: its data items.

Read from the dbt project's SQL, without running dbt: a model's `ref(...)` and
`source('valid', <contract>)` calls give the tables it reads (table lineage, followed from each
output's mart back to the contracts), and the staging model that reads a contract names the
columns it takes from it (a column feeds when its name, or `<name>_pseudo` for a direct
identifier, appears in that model's SQL outside comments). Only contracts of the protocol's
controllers count (a mart shared by several agreements also reads other agencies' extracts, whose
rows the row filters keep out), and the indicator mart is followed only into the models of the
indicators the output's `indicator_id` filter lets leave (`int_indicator_<id>`). An identifiable
output's identity sources add the identity fields they supply.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from orchestration.partnership.contracts.model import Contract
from orchestration.partnership.releases.protocols import Protocol

_REF = re.compile(r"\bref\(\s*['\"]([A-Za-z0-9_]+)['\"]\s*\)")
_SOURCE = re.compile(r"\bsource\(\s*['\"]([A-Za-z0-9_]+)['\"]\s*,\s*['\"]([A-Za-z0-9_]+)['\"]\s*\)")
_COMMENTS = re.compile(r"\{#.*?#\}|--[^\n]*|/\*.*?\*/", re.S)
INDICATOR_MODEL_PREFIX = "int_indicator_"


@dataclass(frozen=True)
class Model:
    name: str
    refs: frozenset[str]
    sources: frozenset[tuple[str, str]]
    sql: str  # without comments


def read_models(dbt_project_dir: Path) -> dict[str, Model]:
    """Every SQL model of the dbt project, by name."""
    models = {}
    for path in sorted((Path(dbt_project_dir) / "models").rglob("*.sql")):
        sql = _COMMENTS.sub(" ", path.read_text(encoding="utf-8"))
        models[path.stem] = Model(path.stem, frozenset(_REF.findall(sql)), frozenset(_SOURCE.findall(sql)), sql)
    return models


def _indicator_models(out: dict) -> set[str] | None:
    ids = (out.get("row_filters") or {}).get("indicator_id")
    if not ids:
        return None
    return {INDICATOR_MODEL_PREFIX + str(i).lower().replace("-", "_") for i in ids}


def contract_readers(models: dict[str, Model], out: dict) -> dict[str, set[str]]:
    """Contract id -> the models (staging) that read it, upstream of the output's mart."""
    allowed = _indicator_models(out)
    start = out["source"].split(".", 1)[1]
    seen, todo, readers = set(), [start], {}
    while todo:
        name = todo.pop()
        if name in seen or name not in models:
            continue  # a seed or a source: no SQL of ours to follow
        seen.add(name)
        m = models[name]
        for schema, table in m.sources:
            if schema == "valid":
                readers.setdefault(table, set()).add(name)
        for ref in m.refs:
            if allowed is not None and ref.startswith(INDICATOR_MODEL_PREFIX) and ref not in allowed:
                continue
            todo.append(ref)
    return readers


def _named(sql: str, column: str) -> bool:
    return re.search(rf"\b{re.escape(column)}(_pseudo)?\b", sql) is not None


def data_items(protocol: Protocol, contracts: dict[str, Contract], models: dict[str, Model]) -> dict[str, list[str]]:
    """Contract id -> the columns of it (in the contract's order) that feed the protocol's outputs."""
    controllers = set(protocol.doc["controllers"])
    used: dict[str, set[str]] = {}
    for out in protocol.outputs:
        for cid, readers in contract_readers(models, out).items():
            contract = contracts.get(cid)
            if contract is None or contract.agency not in controllers:
                continue
            cols = used.setdefault(cid, set())
            cols.update(c.name for c in contract.columns if any(_named(models[r].sql, c.name) for r in readers))
        ids = out.get("identifiers") or {}
        for src in ids.get("sources", []):
            contract = contracts.get(src["contract"])
            if contract is not None:
                fields = set(ids["columns"].values())
                used.setdefault(contract.id, set()).update(c.name for c in contract.columns if c.name in fields)
    return {cid: [c.name for c in contracts[cid].columns if c.name in cols] for cid, cols in sorted(used.items()) if cols}
