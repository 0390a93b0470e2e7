"""Which extracts each dbt model, each indicator and each release reads: from the dbt manifest's
lineage and the protocols' outputs and row filters, never restated by hand.

A model reads the `valid` extracts upstream of it, through every model it refs, with two
refinements where one table serves many readers:

- a model whose meta says `rows_per_extract: <column>` holds rows each belonging to one extract
  (named in that column); a model reading it reads only the extracts its own code names, when
  it names any (`where contract_id in (...)`), else all of them;
- an indicator is the parent of the indicator mart whose code names its id; a release output
  filtered to some indicators reads only those indicators' models.

A release reads its outputs' extracts of its controllers: the protocol shares those agencies'
data, so a record of another agency a model looks at (where a family lives, from any record)
does not make that release wait for that agency. One agency's rejected file then holds back
only the releases that share its data, not every release reading the shared mart.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from orchestration.partnership.contracts.model import Contract
from orchestration.partnership.releases.protocols import Protocol

INDICATOR_FILTER = "indicator_id"
ROWS_PER_EXTRACT = "rows_per_extract"


@dataclass(frozen=True)
class Lineage:
    models: dict[str, frozenset[str]]  # model name -> contract ids it reads
    indicators: dict[str, frozenset[str]]  # indicator id -> contract ids
    releases: dict[str, frozenset[str]]  # protocol id -> contract ids

    def held_back(self, standing: dict[str, list]) -> dict[str, dict[str, list]]:
        """Of the extracts held (contract id -> what holds it: rejected deliveries, a failed step),
        those each release reads: protocol id -> {contract id: what holds it}; a release not held is absent."""
        out = {}
        for pid, extracts in self.releases.items():
            held = {cid: standing[cid] for cid in sorted(extracts) if standing.get(cid)}
            if held:
                out[pid] = held
        return out

    def indicators_held_back(self, standing: dict[str, list]) -> dict[str, list[str]]:
        """indicator id -> the held extracts it reads."""
        return {i: sorted(c for c in cids if standing.get(c)) for i, cids in sorted(self.indicators.items())
                if any(standing.get(c) for c in cids)}


def _models(manifest: dict) -> dict[str, dict]:
    return {uid: n for uid, n in manifest["nodes"].items() if n["resource_type"] in ("model", "seed", "snapshot")}


def _valid_source(manifest: dict, uid: str) -> str | None:
    src = manifest["sources"].get(uid)
    return src["name"] if src and src["source_name"] == "valid" else None


def _named_extracts(code: str, known: set[str]) -> set[str]:
    return {m for m in re.findall(r"'([a-z0-9_]+__[a-z0-9_]+)'", code) if m in known}


def model_extracts(manifest: dict, known: set[str]) -> dict[str, frozenset[str]]:
    """Every model's (and seed's) extracts, by unique id."""
    nodes = _models(manifest)
    memo: dict[str, frozenset[str]] = {}

    def reads(uid: str) -> frozenset[str]:
        if uid in memo:
            return memo[uid]
        memo[uid] = frozenset()  # a cycle cannot occur in dbt's graph; this only guards the recursion
        node = nodes[uid]
        named = _named_extracts(node.get("raw_code") or "", known)
        out: set[str] = set()
        for parent in (node.get("depends_on") or {}).get("nodes", []):
            if (cid := _valid_source(manifest, parent)) is not None:
                out.add(cid)
            elif parent in nodes:
                got = reads(parent)
                if (nodes[parent].get("config", {}).get("meta") or {}).get(ROWS_PER_EXTRACT) and named & got:
                    got = got & named  # only the rows of the extracts this model's code names
                out |= got
        memo[uid] = frozenset(out)
        return memo[uid]

    return {uid: reads(uid) for uid in nodes}


def _by_name(manifest: dict, relation: str) -> str | None:
    """The model a protocol output's `source` (schema.name) names."""
    name = relation.rpartition(".")[2]
    return next((uid for uid, n in _models(manifest).items() if n.get("alias", n["name"]) == name or n["name"] == name), None)


def _indicator_parents(manifest: dict, mart: str) -> dict[str, str]:
    """indicator id -> the mart's parent model producing it (its code names the id as a literal)."""
    nodes = _models(manifest)
    out: dict[str, str] = {}
    for parent in (nodes[mart].get("depends_on") or {}).get("nodes", []):
        if parent in nodes:
            for ind in re.findall(r"'([A-Z]+-[0-9]+)'", nodes[parent].get("raw_code") or ""):
                out.setdefault(ind, parent)
    return out


def lineage(manifest: dict, protocols: dict[str, Protocol], contracts: dict[str, Contract]) -> Lineage:
    known = set(contracts)
    per_model = model_extracts(manifest, known)
    nodes = _models(manifest)
    indicators: dict[str, frozenset[str]] = {}
    releases: dict[str, frozenset[str]] = {}
    for pid, protocol in sorted(protocols.items()):
        shared = {cid for cid, c in contracts.items() if c.agency in protocol.doc["controllers"]}
        reads: set[str] = set()
        for out in protocol.outputs:
            uid = _by_name(manifest, out["source"])
            if uid is None:
                reads |= shared  # a source dbt does not know: held by any of its controllers' extracts
                continue
            wanted = (out.get("row_filters") or {}).get(INDICATOR_FILTER)
            producers = _indicator_parents(manifest, uid)
            if wanted and producers:
                for ind in wanted:
                    got = per_model[producers[ind]] if ind in producers else per_model[uid]
                    indicators[ind] = got
                    reads |= got
            else:
                reads |= per_model[uid]
        releases[pid] = frozenset(reads & shared)
    return Lineage({nodes[u]["name"]: e for u, e in per_model.items()}, indicators, releases)


_kept: dict[tuple, Lineage] = {}


def load_lineage(manifest_path: Path, protocols: dict[str, Protocol], contracts: dict[str, Contract]) -> Lineage:
    """`lineage` of the manifest file, computed once per process for the same manifest and catalogue."""
    path = Path(manifest_path)
    key = (str(path.resolve()), path.stat().st_mtime_ns, id(protocols), id(contracts))
    if key not in _kept:
        _kept.clear()
        _kept[key] = lineage(json.loads(path.read_text()), protocols, contracts)
    return _kept[key]
