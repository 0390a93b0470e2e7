"""The dbt docs of a release's tables: each output's source model (description, the released
columns' descriptions) and its upstream lineage, from `reports/dbt_docs/manifest.json`."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from orchestration.partnership.releases.protocols import Protocol
from orchestration.partnership.settings import Settings


@lru_cache(maxsize=4)
def _manifest(path: str, mtime_ns: int) -> dict:
    doc = json.loads(Path(path).read_text(encoding="utf-8"))
    nodes = {**doc.get("nodes", {}), **doc.get("sources", {})}
    return {"nodes": nodes, "by_relation": {f"{n.get('schema')}.{n.get('name')}": uid for uid, n in nodes.items()}}


def _docs(settings: Settings) -> dict | None:
    path = settings.reports_dir / "dbt_docs" / "manifest.json"
    return _manifest(str(path), path.stat().st_mtime_ns) if path.is_file() else None


def model_docs(settings: Settings, protocol: Protocol, table: str) -> dict | None:
    """{table, source, description, columns: [(name, description)], lineage: [upstream node names]}
    for one released table of `protocol`, or None if the protocol releases no such table."""
    out = next((o for o in protocol.outputs if o["table"] == table), None)
    if out is None:
        return None
    docs = _docs(settings)
    uid = docs["by_relation"].get(out["source"]) if docs else None
    node = docs["nodes"].get(uid, {}) if uid else {}
    cols = node.get("columns", {})
    lineage, todo, seen = [], list(node.get("depends_on", {}).get("nodes", [])), set()
    while todo:
        parent = todo.pop(0)
        if parent in seen or parent not in docs["nodes"]:
            continue
        seen.add(parent)
        p = docs["nodes"][parent]
        lineage.append(f"{p.get('resource_type')} {p.get('schema')}.{p.get('name')}")
        todo.extend(p.get("depends_on", {}).get("nodes", []))
    return {"table": table, "source": out["source"], "description": out.get("description", ""),
            "model_description": node.get("description", ""),
            "columns": [(c, (cols.get(c) or {}).get("description", "")) for c in out["columns"]],
            "lineage": lineage}
