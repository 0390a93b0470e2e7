"""The register's pages as self-contained HTML: inline CSS and SVG, no script, nothing fetched."""

from __future__ import annotations

from pathlib import Path

import jinja2
from markupsafe import Markup

from orchestration.partnership.contracts.model import Contract
from orchestration.partnership.register.flow import flow_svg, party_names
from orchestration.partnership.register.history import History
from orchestration.partnership.register.state import (
    DRIFT,
    EXPIRED,
    EXPIRING,
    IN_FORCE,
    REVIEW_OVERDUE,
    UNSIGNED,
    Standing,
)
from orchestration.partnership.register.words import (
    LEVEL_WORDS,
    ROLE_WORDS,
    disclosure_words,
    output_rules,
    retention_words,
)

TEMPLATES = Path(__file__).with_name("templates")
MADE_SHOWN = 8  # releases listed on a page; the rest are counted
CLASS_WORDS = {"direct_identifier": "direct identifiers", "quasi_identifier": "quasi-identifiers",
               "special_category": "special category", "other": "other"}


def label_class(label: str) -> str:
    if label in (EXPIRED, DRIFT, REVIEW_OVERDUE, UNSIGNED):
        return "bad"
    if label == IN_FORCE:
        return "ok"
    return "warn" if label == EXPIRING or label.startswith("review") else ""


def _env() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.globals.update(label_class=label_class, role_words=ROLE_WORDS)
    return env


def _items(s: Standing, contracts: dict[str, Contract]) -> list[dict]:
    names = party_names(s.protocol)
    rows = []
    for cid, cols in sorted(s.protocol.doc["data_items"].items()):
        c = contracts.get(cid)
        classes: dict[str, list[str]] = {}
        for col in cols:
            try:
                cls = c.column(col).classification if c else "other"
            except KeyError:
                cls = "other"
            classes.setdefault(cls, []).append(col)
        agency = cid.split("__", 1)[0]
        rows.append({"contract": cid, "agency": names.get(agency, agency), "version": c.version if c else "",
                     "title": c.title.split(" — ", 1)[-1] if c else "(no such contract now)",
                     "by_class": [(CLASS_WORDS[k], classes[k]) for k in CLASS_WORDS if k in classes],
                     "removed": s.removed.get(cid, [])})
    return rows


def render_page(s: Standing, contracts: dict[str, Contract], history: History | None) -> str:
    """One agreement's page. Nothing on it changes from night to night unless the agreement, its
    standing or its releases do (no date of rendering), so an unchanged page is not printed again."""
    p = s.protocol
    made = history.made if history else []
    return _env().get_template("agreement.html.j2").render(
        doc=p.doc, protocol=p, standing=s, css=Markup((TEMPLATES / "register.css").read_text()),
        svg=Markup(flow_svg(p, contracts, p.doc["data_items"])), level_words=LEVEL_WORDS[p.level],
        outputs=[{**o, "rules": output_rules(o)} for o in p.outputs], disclosure=disclosure_words(p),
        retention=retention_words(p), items=_items(s, contracts), party_names=party_names(p),
        made=made[:MADE_SHOWN], more_made=max(0, len(made) - MADE_SHOWN), signatories=_signatories(p))


def _signatories(p) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for s in (p.doc.get("signature") or {}).get("signatories", []):
        out.setdefault(s["party"], []).append(s)
    return out


def render_index(standings: list[Standing], histories: dict[str, History], with_pdf: set[str]) -> str:
    """The index; `with_pdf`: the protocols whose PDF is in the folder (linked)."""
    on = standings[0].on.isoformat() if standings else ""
    rows = [{"s": s, "latest": histories[s.protocol.id].latest if s.protocol.id in histories else None,
             "pdf": s.protocol.id in with_pdf} for s in standings]
    return _env().get_template("index.html.j2").render(
        css=Markup((TEMPLATES / "register.css").read_text()), rows=rows, on=on,
        warnings=[w for s in standings for w in s.warnings])
