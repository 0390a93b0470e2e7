"""Where each agreement stands on a day: in force, expiring, expired, its review, and drift.

Drift is a difference between what was signed and what the files say now: the protocol's text
(its sha256 without the signature block, `protocols.signed_sha256`) is not the text signed, or a
contract column now feeds its release that is not among the data items signed (`lineage`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

from orchestration.partnership.contracts.model import Contract
from orchestration.partnership.register.lineage import Model, data_items
from orchestration.partnership.releases.protocols import Protocol

WARNING_DAYS = 90  # an expiry or review this close is warned of

NOT_YET = "not yet in force"
IN_FORCE = "in force"
EXPIRING = "expiring within 90 days"
EXPIRED = "expired"
REVIEW_DUE = "review due within 90 days"
REVIEW_OVERDUE = "review overdue"
DRIFT = "drift"
UNSIGNED = "unsigned"


@dataclass(frozen=True)
class Standing:
    protocol: Protocol
    on: date
    term: str  # NOT_YET | IN_FORCE | EXPIRING | EXPIRED
    review: str | None  # REVIEW_DUE | REVIEW_OVERDUE | None
    signed: bool
    text_changed: bool  # the file is not the text signed
    added: dict[str, list[str]] = field(default_factory=dict)  # contract -> columns feeding now, not signed
    removed: dict[str, list[str]] = field(default_factory=dict)  # contract -> columns signed, feeding no more

    @property
    def drift(self) -> list[str]:
        """Each difference between the agreement signed and the files now, in words."""
        out = []
        if self.text_changed:
            out.append(f"the protocol file {self.protocol.path.name} changed since it was signed "
                       f"(its text sha256 is {self.protocol.text_sha256}, the signature records "
                       f"{self.protocol.doc['signature']['text_sha256']})")
        for cid, cols in sorted(self.added.items()):
            out.append(f"contract {cid} now feeds the release with column(s) not signed: {', '.join(cols)}")
        return out

    @property
    def labels(self) -> list[str]:
        """The states shown on the index, the term first."""
        labels = [self.term]
        if self.term != EXPIRED and self.review:
            labels.append(self.review)
        if not self.signed:
            labels.append(UNSIGNED)
        if self.drift:
            labels.append(DRIFT)
        return labels

    @property
    def warnings(self) -> list[str]:
        """What the night warns of: an agreement expiring or under review, drifted or unsigned. An
        expired agreement produces nothing and is not warned of again; the index shows it."""
        p = self.protocol
        if self.term == EXPIRED:
            return []
        out = []
        if self.term == EXPIRING:
            out.append(f"{p.id}: expires on {p.valid_until.isoformat()} (within {WARNING_DAYS} days); "
                       "a new version must be signed for releases to continue")
        if self.review == REVIEW_OVERDUE:
            out.append(f"{p.id}: review overdue since {p.doc['review_date']}")
        elif self.review == REVIEW_DUE:
            out.append(f"{p.id}: review due on {p.doc['review_date']} (within {WARNING_DAYS} days)")
        if not self.signed:
            out.append(f"{p.id}: no signature recorded")
        out += [f"{p.id}: drift: {d}" for d in self.drift]
        return out


def standing(protocol: Protocol, on: date, contracts: dict[str, Contract], models: dict[str, Model]) -> Standing:
    doc = protocol.doc
    soon = on + timedelta(days=WARNING_DAYS)
    if on < protocol.valid_from:
        term = NOT_YET
    elif on > protocol.valid_until:
        term = EXPIRED
    elif protocol.valid_until <= soon:
        term = EXPIRING
    else:
        term = IN_FORCE
    review_date = date.fromisoformat(doc["review_date"])
    review = REVIEW_OVERDUE if on > review_date else REVIEW_DUE if review_date <= soon else None
    signature = doc.get("signature")
    now = data_items(protocol, contracts, models)
    signed_items = doc["data_items"]
    added = {cid: [c for c in cols if c not in signed_items.get(cid, [])] for cid, cols in now.items()}
    removed = {cid: [c for c in cols if c not in now.get(cid, [])] for cid, cols in signed_items.items()}
    return Standing(protocol, on, term, review, signature is not None,
                    signature is not None and signature["text_sha256"] != protocol.text_sha256,
                    {k: v for k, v in added.items() if v}, {k: v for k, v in removed.items() if v})


def standings(protocols: dict[str, Protocol], on: date, contracts: dict[str, Contract],
              models: dict[str, Model]) -> list[Standing]:
    return [standing(p, on, contracts, models) for _, p in sorted(protocols.items())]
