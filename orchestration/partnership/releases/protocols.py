"""Data sharing protocols: one YAML file each, checked against protocol.schema.json.

A protocol drives its release and the audit of that release; nothing else restates it.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from pathlib import Path

import jsonschema
import yaml

from orchestration.partnership.contracts.model import SAFE_LOADER


class ProtocolError(ValueError):
    """A protocol file that cannot be used; the message names the file and the key."""


@dataclass(frozen=True)
class Protocol:
    doc: dict
    path: Path
    text_sha256: str = field(default="", compare=False)  # of the text as loaded, signature block excluded (`signed_text`)

    @property
    def id(self) -> str:
        return self.doc["id"]

    @property
    def version(self) -> str:
        return self.doc["version"]

    @property
    def level(self) -> str:
        return self.doc["level"]

    @property
    def outputs(self) -> list[dict]:
        return self.doc["outputs"]

    @property
    def disclosure(self) -> dict | None:
        return self.doc.get("disclosure_control")

    @property
    def recipient_id(self) -> str:
        return self.doc["recipient"]["id"]

    @property
    def pseudonym_context(self) -> str:
        """The context the environment key is derived with for this recipient's pseudonyms."""
        return f"release-recipient:{self.recipient_id}"

    @property
    def margins(self) -> list[dict]:
        return ((self.disclosure or {}).get("secondary_suppression") or {}).get("margins", [])

    @property
    def valid_from(self) -> date:
        return date.fromisoformat(self.doc["valid_from"])

    @property
    def valid_until(self) -> date:
        return date.fromisoformat(self.doc["valid_until"])

    def in_force(self, on: date) -> tuple[bool, str]:
        """Whether outputs may be produced on `on`, and the reason if not."""
        if on < self.valid_from:
            return False, f"protocol {self.id} is not yet in force (valid from {self.valid_from})"
        if on > self.valid_until:
            return False, f"protocol {self.id} expired on {self.valid_until}; no release may be produced"
        return True, ""


@lru_cache(maxsize=1)
def _schema() -> dict:
    return json.loads(Path(__file__).with_name("protocol.schema.json").read_text())


# The signature block: a top-level `signature:` line and every line after it that is blank or
# indented, up to the next line that starts in the first column.
_SIGNATURE_BLOCK = re.compile(r"^signature:.*\n(?:(?:[ \t].*|[ \t]*)(?:\n|$))*", re.M)


def signed_text(text: str) -> str:
    """The text a protocol's signatories sign: the file with line endings made `\\n` and its
    signature block removed (the block records the signature of the rest, so cannot be part of it)."""
    return _SIGNATURE_BLOCK.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))


def signed_sha256(text: str) -> str:
    """The sha256 (hex) of `signed_text(text)` encoded as UTF-8: what `signature.text_sha256` records."""
    return hashlib.sha256(signed_text(text).encode("utf-8")).hexdigest()


def load_protocol(path: Path) -> Protocol:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ProtocolError(f"{path}: not UTF-8 text ({exc})") from None
    if len(re.findall(r"^signature\s*:", text, re.M)) > 1:
        raise ProtocolError(f"{path}: signature: more than one signature block")
    try:
        # Dates stay text, as written, so the schema checks their form.
        doc = yaml.load(text, Loader=_NoDatesLoader)
    except yaml.YAMLError as exc:
        raise ProtocolError(f"{path}: not valid YAML ({exc})") from None
    if any(isinstance(e, yaml.AliasEvent) for e in yaml.parse(text, Loader=_NoDatesLoader)):
        # an alias could carry text from the signature block, which is not signed, into the agreement
        raise ProtocolError(f"{path}: YAML anchors and aliases are not allowed: the text signed must say everything itself")
    validator = jsonschema.Draft202012Validator(_schema(), format_checker=jsonschema.FormatChecker())
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.path))
    if errors:
        e = errors[0]
        key = ".".join(str(p) for p in e.path) or "(top level)"
        raise ProtocolError(f"{path}: {key}: {e.message}")
    if doc["id"] != path.stem:
        raise ProtocolError(f"{path}: id: {doc['id']!r} must match the file name {path.stem!r}")
    if doc["valid_until"] < doc["valid_from"]:
        raise ProtocolError(f"{path}: valid_until: before valid_from")
    if doc["level"] == "aggregate" and "disclosure_control" not in doc:
        raise ProtocolError(f"{path}: disclosure_control: required for aggregate protocols")
    if not doc["valid_from"] <= doc["review_date"] <= doc["valid_until"]:
        raise ProtocolError(f"{path}: review_date: must fall from valid_from to valid_until")
    for i, out in enumerate(doc["outputs"]):
        _check_output(path, doc, i, out)
    _check_parties(path, doc)
    return Protocol(doc, path, signed_sha256(text))


def _check_parties(path: Path, doc: dict) -> None:
    """Each controller and the recipient is a party acting as a controller; data items and
    signatories name parties and controllers of this protocol."""
    parties: dict[str, dict] = {}
    for i, party in enumerate(doc["parties"]):
        if party["id"] in parties:
            raise ProtocolError(f"{path}: parties.{i}.id: {party['id']!r} is listed twice")
        parties[party["id"]] = party
    for who in [*doc["controllers"], doc["recipient"]["id"]]:
        if who not in parties:
            raise ProtocolError(f"{path}: parties: {who!r} (a controller or the recipient) is not listed")
        if parties[who]["role"] == "processor":
            raise ProtocolError(f"{path}: parties: {who!r} decides what is done with the data: controller or "
                                "joint_controller, not processor")
    for cid in doc["data_items"]:
        if cid.split("__", 1)[0] not in doc["controllers"]:
            raise ProtocolError(f"{path}: data_items.{cid}: its agency is not one of the controllers")
    for i, s in enumerate((doc.get("signature") or {}).get("signatories", [])):
        if s["party"] not in parties:
            raise ProtocolError(f"{path}: signature.signatories.{i}.party: {s['party']!r} is not a party")


# Column names that are direct identifiers wherever they appear; only an identifiable
# protocol may release them, and only through its `identifiers` block.
DIRECT_IDENTIFIER_COLUMNS = frozenset({"nhs_number", "forename", "surname", "postcode", "uprn", "upn", "date_of_birth",
                                       "person_id", "household_id", "child_id", "nominal_id", "address", "address_line"})


def _check_output(path: Path, doc: dict, i: int, out: dict) -> None:
    where = f"{path}: outputs.{i}"
    cols = set(out["columns"])
    for key in ("counts", "derived_from_counts"):
        unknown = set(out.get(key, [])) - cols
        if unknown:
            raise ProtocolError(f"{where}.{key}: {sorted(unknown)} not in columns")
    for key in ("pseudonyms", "generalisation"):
        unknown = set(out.get(key, {})) - cols
        if unknown:
            raise ProtocolError(f"{where}.{key}: {sorted(unknown)} not in columns")
    level = doc["level"]
    if level != "aggregate" and (out.get("counts") or out.get("derived_from_counts")):
        raise ProtocolError(f"{where}.counts: disclosure-controlled counts belong to aggregate protocols only")
    if level == "aggregate" and (out.get("pseudonyms") or out.get("identifiers")):
        raise ProtocolError(f"{where}: an aggregate protocol releases no pseudonyms or identifiers")
    if level == "pseudonymised" and out.get("identifiers"):
        raise ProtocolError(f"{where}.identifiers: only an identifiable protocol may release direct identifiers")
    ids = out.get("identifiers") or {}
    unknown = set(ids.get("columns", {})) - cols
    if unknown:
        raise ProtocolError(f"{where}.identifiers.columns: {sorted(unknown)} not in columns")
    exposed = (cols & DIRECT_IDENTIFIER_COLUMNS) - set(ids.get("columns", {}))
    if exposed:
        raise ProtocolError(f"{where}.columns: {sorted(exposed)} are direct identifiers; release them as pseudonyms "
                            "(pseudonymised) or through `identifiers` (identifiable) only")
    if level == "pseudonymised" and not out.get("pseudonyms"):
        raise ProtocolError(f"{where}.pseudonyms: a pseudonymised output names the column its pseudonym replaces")
    _check_pooling(path, doc, i, out)
    if (doc.get("disclosure_control") or {}).get("secondary_suppression") and out.get("counts"):
        for j, m in enumerate(doc["disclosure_control"]["secondary_suppression"]["margins"]):
            unknown = (set(m["by"]) | {m["column"]}) - cols
            if unknown:
                raise ProtocolError(f"{path}: disclosure_control.secondary_suppression.margins.{j}: {sorted(unknown)} "
                                    f"not in the columns of outputs.{i}")


def _check_pooling(path: Path, doc: dict, i: int, out: dict) -> None:
    """Pooled periods: labels distinct, and their rows allowed by the output's cells (the audit
    would otherwise block every release)."""
    specs = (doc.get("disclosure_control") or {}).get("pooled_periods") or []
    if not specs or not out.get("counts"):
        return
    labels = [s["label"] for s in specs]
    for j, spec in enumerate(specs):
        where = f"{path}: disclosure_control.pooled_periods.{j}"
        if labels.count(spec["label"]) > 1:
            raise ProtocolError(f"{where}.label: {spec['label']!r} is the label of another pooled period")
        missing = {"period_type", "period_start", "period_end", "geography_type"} - set(out["columns"])
        if missing:
            raise ProtocolError(f"{where}: outputs.{i} has no {sorted(missing)} columns to pool over")
        cells = (out.get("row_filters") or {}).get("cells")
        if cells is None:
            continue
        for g in spec["geography_types"]:
            if not any(c.get("geography_type", g) == g and c.get("period_type") == spec["label"] for c in cells):
                raise ProtocolError(f"{where}.label: outputs.{i}.row_filters.cells allows no "
                                    f"{{geography_type: {g}, period_type: {spec['label']}}} cell")


def load_protocols(protocols_dir: Path) -> dict[str, Protocol]:
    return {p.id: p for p in (load_protocol(f) for f in sorted(Path(protocols_dir).glob("*.yaml")))}


class _NoDatesLoader(SAFE_LOADER):  # libyaml's parser, as for the contracts
    pass


_NoDatesLoader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:timestamp"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
