"""Data sharing protocols: one YAML file each, checked against protocol.schema.json.

A protocol drives its release and the audit of that release; nothing else restates it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path

import jsonschema
import yaml


class ProtocolError(ValueError):
    """A protocol file that cannot be used; the message names the file and the key."""


@dataclass(frozen=True)
class Protocol:
    doc: dict
    path: Path

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


def load_protocol(path: Path) -> Protocol:
    path = Path(path)
    try:
        # Dates stay text, as written, so the schema checks their form.
        doc = yaml.load(path.read_text(encoding="utf-8"), Loader=_NoDatesLoader)
    except yaml.YAMLError as exc:
        raise ProtocolError(f"{path}: not valid YAML ({exc})") from None
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
    for i, out in enumerate(doc["outputs"]):
        for key in ("counts", "derived_from_counts"):
            unknown = set(out.get(key, [])) - set(out["columns"])
            if unknown:
                raise ProtocolError(f"{path}: outputs.{i}.{key}: {sorted(unknown)} not in columns")
    return Protocol(doc, path)


def load_protocols(protocols_dir: Path) -> dict[str, Protocol]:
    return {p.id: p for p in (load_protocol(f) for f in sorted(Path(protocols_dir).glob("*.yaml")))}


class _NoDatesLoader(yaml.SafeLoader):
    pass


_NoDatesLoader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:timestamp"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
