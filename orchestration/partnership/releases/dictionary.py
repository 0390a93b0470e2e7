"""The data dictionary of a release (`data_dictionary.md`) and the dbt descriptions it copies.

The descriptions are read from dbt's manifest; the input fingerprint hashes them too, so a
changed description recomputes the release.
"""

from __future__ import annotations

import hashlib
import json

import polars as pl

from orchestration.partnership.releases.pooling import sum_base
from orchestration.partnership.releases.protocols import Protocol


def dbt_descriptions(source: str) -> tuple[str, dict[str, str]]:
    """The model's and its columns' descriptions from the dbt manifest, when it has been built."""
    nodes = _manifest_nodes()
    if nodes is None:
        return "", {}
    return _descriptions_in(nodes).get(source.split(".", 1)[1], ("", {}))


_manifest_read: dict[str, dict] = {}  # the manifest's sha256 -> its nodes


def _manifest_nodes() -> dict | None:
    """The dbt manifest's nodes (None before it is built). Parsed once per process while its bytes
    are the same: a night's releases read it several times each (fingerprint, data dictionary,
    model documentation), and parsing its 2 MB takes about a tenth of a second."""
    from orchestration.partnership.settings import PROJECT_ROOT

    try:
        raw = (PROJECT_ROOT / "dbt_project" / "target" / "manifest.json").read_bytes()
    except FileNotFoundError:
        return None
    digest = hashlib.sha256(raw).hexdigest()
    if digest not in _manifest_read:
        try:
            nodes = json.loads(raw)["nodes"]
        except (ValueError, KeyError):
            nodes = {}
        _manifest_read.clear()
        _manifest_read[digest] = nodes
    return _manifest_read[digest]


def _descriptions_in(nodes: dict) -> dict[str, tuple[str, dict[str, str]]]:
    """Model or seed name -> its description and its columns', from the manifest's `nodes`."""
    found: dict[str, tuple[str, dict[str, str]]] = {}
    for node in nodes.values():
        if node.get("resource_type") in ("model", "seed") and node.get("name") not in found:
            found[node.get("name")] = (node.get("description", ""),
                                       {c: v.get("description", "") for c, v in node.get("columns", {}).items()})
    return found


MODEL_DOCS = "model_docs"
"""The release's folder of the documentation of the models its tables come from: one Markdown file
per released table's model, and no other model's."""


def model_doc_name(source: str) -> str:
    """`marts.fct_x` -> `fct_x.md`, the file under MODEL_DOCS."""
    return f"{source.split('.', 1)[1]}.md"


def model_documentation(source: str) -> str:
    """The documentation of the dbt model (or seed) `source` (schema.name) a released table comes
    from: its description, its columns', the tests dbt runs on it and its SQL, from dbt's manifest.
    Only that model's: other models appear by name only, as its SQL refers to them."""
    schema, name = source.split(".", 1)
    nodes = _manifest_nodes() or {}
    node = next((n for n in nodes.values() if n.get("resource_type") in ("model", "seed") and n.get("name") == name), None)
    lines = [f"# `{source}`", ""]
    if node is None:
        return "\n".join(lines + ["The dbt manifest was not built when this release was made: no documentation.", ""])
    lines += [" ".join((node.get("description") or "(no description)").split()), "",
              f"A dbt {node['resource_type']}, built in the warehouse's secure zone as `{schema}.{name}`; the release "
              "copies the columns its protocol names, after its row filters and disclosure control.", "",
              "## Columns", "", "| column | description |", "|---|---|"]
    lines += [f"| {c} | {' '.join((v.get('description') or '').split())} |" for c, v in node.get("columns", {}).items()]
    tests = sorted(n.get("name", "") for n in nodes.values()
                   if n.get("resource_type") == "test" and node["unique_id"] in (n.get("depends_on") or {}).get("nodes", []))
    lines += ["", "## Tests dbt runs on it every night", ""] + ([f"- `{t}`" for t in tests] or ["(none)"])
    if node.get("raw_code"):
        lines += ["", "## How it is made (its SQL)", "", "```sql", node["raw_code"].strip(), "```"]
    return "\n".join(lines) + "\n"


def data_dictionary(protocol: Protocol, tables: dict[str, pl.DataFrame]) -> str:
    """The release's data dictionary (Markdown): the terms, the disclosure control, each table's columns."""
    lines = [f"# {protocol.doc['title']}", "", f"Protocol `{protocol.id}` v{protocol.version} — level: {protocol.level}; "
             f"recipient: {protocol.doc['recipient']['name']}.", "", protocol.doc["purpose"].strip(), "",
             f"Keep this copy no longer than {protocol.doc['retention']['recipient_copy_days']} days."
             + (f" {protocol.doc['retention']['on_expiry'].strip()}" if protocol.doc["retention"].get("on_expiry") else ""), ""]
    if protocol.disclosure:
        dc = protocol.disclosure
        lines += [f"Disclosure control: counts from {dc['suppress_counts_from']} to {dc['suppress_counts_to']} are suppressed "
                  f"(value empty, `<count>_suppressed` true); other counts are rounded to the nearest {dc['rounding_base']} "
                  f"(`<count>_rounding_base`); rates and intervals of a row with a suppressed count are withheld "
                  f"(`derived_withheld` true). Every rate, percentage and interval is computed from the published "
                  f"(rounded) counts, not from the exact ones; a standardised rate from its age bands' counts rounded "
                  f"to add up to the published count, and only when none of them is in the suppressed range."]
        lines += ["Further cells are suppressed (secondary suppression) so that no suppressed count can be worked out, "
                  "or told from zero through the rounding of the others, from any total it is part of: months within quarters, quarters within pooled periods, wards within "
                  "the district, breakdowns within persons, the same cell in two tables"
                  + ("; and " + "; ".join(m["name"] for m in protocol.margins) if protocol.margins else "") + "."]
        for pool in dc.get("pooled_periods") or []:
            lines += [f"Rows with period type `{pool['label']}` ({pool['name']}): for "
                      f"{', '.join(pool['geography_types'])}, the counts of the latest {pool['periods']} consecutive "
                      f"{pool['period_type']}s added up (a person counted in two of them counts twice). Where all "
                      f"{pool['periods']} are published, the pooled count is the sum of their published values and its "
                      f"rounding base says how far from the exact count that sum can be (within half the base: "
                      f"{sum_base(pool['periods'], dc['rounding_base'])} for {pool['periods']} periods none of them 0); "
                      f"otherwise it is rounded like any count."]
        lines.append("")
    for out in protocol.outputs:
        df = tables[out["table"]]
        model_doc, col_docs = dbt_descriptions(out["source"])
        pseudonyms, ids = out.get("pseudonyms") or {}, (out.get("identifiers") or {}).get("columns", {})
        gen = out.get("generalisation") or {}
        lines += [f"## {out['table']}", "", out.get("description", "").strip() or model_doc, "",
                  f"Made by the model `{out['source']}`: its documentation is "
                  f"[{MODEL_DOCS}/{model_doc_name(out['source'])}]({MODEL_DOCS}/{model_doc_name(out['source'])}).", "",
                  "| column | type | description |", "|---|---|---|"]
        for c, t in df.schema.items():
            if c in pseudonyms:
                d = f"Pseudonym of the {pseudonyms[c].replace('_', ' ')}, unique to this recipient: it cannot be joined to any other release's."
            elif c in ids:
                d = f"{ids[c].replace('_', ' ').capitalize()} as last recorded by a source this protocol names."
            elif c.endswith("_suppressed"):
                d = f"True when `{c[:-11]}` is suppressed (its value is empty)."
            elif c.endswith("_rounding_base"):
                d = f"`{c[:-14]}` is rounded to the nearest multiple of this." + (
                    " On a pooled row that adds up published periods it is their sum, within half of this of the exact count."
                    if (protocol.disclosure or {}).get("pooled_periods") else "")
            elif c == "derived_withheld":
                d = "True when the row's rates and intervals are withheld because a count is suppressed."
            else:
                d = col_docs.get(c, "")
            if c in gen:
                d = (d + f" Generalised: {gen[c].replace('_', ' ')}.").strip()
            lines.append(f"| {c} | {t} | {' '.join(d.split())} |")
        lines.append("")
    return "\n".join(lines)
