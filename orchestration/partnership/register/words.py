"""A protocol's rules in plain words, for the person who signs it: what leaves, and how it is protected."""

from __future__ import annotations

from orchestration.partnership.releases.protocols import Protocol

LEVEL_WORDS = {
    "aggregate": "Aggregate: counts and rates only, under disclosure control; no record about any one person leaves.",
    "pseudonymised": "Pseudonymised: one row per event or person, but people are known only by a pseudonym made for "
                     "this recipient alone; no name, address, date of birth or NHS number leaves.",
    "identifiable": "Identifiable: people are named; each identity field is taken only from the sources listed, "
                    "under the statutory basis given for each.",
}
ROLE_WORDS = {"controller": "controller", "joint_controller": "joint controller", "processor": "processor"}
GENERALISATION_WORDS = {"month": "the month only (first day of the month)", "quarter": "the quarter only (its first day)",
                        "lsoa": "the LSOA (a neighbourhood of about 1,500 people), never a postcode",
                        "ward": "the electoral ward, never a postcode", "age_band_5y": "a five-year age band, 90+ grouped"}


def _list(values) -> str:
    return ", ".join(str(v) for v in values)


def output_rules(out: dict) -> list[str]:
    """Which rows and columns of one output leave, and in what form."""
    rules = []
    for key, allowed in (out.get("row_filters") or {}).items():
        if key == "cells":
            rules.append("Only these combinations leave: " + "; ".join(" × ".join(str(v) for v in c.values())
                                                                      for c in allowed) + ".")
        elif key == "geography":
            rules.append(f"Only rows whose {allowed['column']} is a {allowed['level']} within {_list(allowed['within'])}.")
        elif key == "age":
            rules.append(f"Only rows whose {allowed['column']} is one of {_list(allowed['values'])}.")
        elif key == "cohort":
            rules.append(f"Only rows where {allowed['column']} is {str(allowed.get('equals', True)).lower()}.")
        else:
            rules.append(f"Only rows whose {key} is one of {_list(allowed)}.")
    for col, form in (out.get("generalisation") or {}).items():
        rules.append(f"{col} is coarsened to {GENERALISATION_WORDS[form]}.")
    for col, src in (out.get("pseudonyms") or {}).items():
        rules.append(f"{col} is a pseudonym of the {src.replace('_', ' ')}, unique to this recipient: it cannot be "
                     "joined to any other release.")
    ids = out.get("identifiers")
    if ids:
        rules.append(f"{_list(ids['columns'])}: the person's identity, taken only from "
                     + "; ".join(f"{s['contract']} ({s['basis']})" for s in ids["sources"]) + ".")
    for rule in out.get("consent") or []:
        rules.append(f"Rows from {_list(rule['agencies'])} leave only when {rule['column']} is true (the person consented).")
    oo = out.get("opt_out")
    if oo:
        scope = "Every row" if oo.get("applies_to_all_rows") else f"Rows from {_list(oo['health_derived_agencies'])}" + (
            f" or flagged {oo['health_derived_column']}" if oo.get("health_derived_column") else "")
        rules.append(f"{scope} about a person with a national data opt-out (or not known to the secure zone) never leave.")
    if out.get("counts"):
        rules.append(f"{_list(out['counts'])} are counts under the disclosure control below"
                     + (f"; {_list(out['derived_from_counts'])} are withheld on a row whose count is suppressed."
                        if out.get("derived_from_counts") else "."))
    return rules


def disclosure_words(protocol: Protocol) -> list[str]:
    dc = protocol.disclosure
    if not dc:
        return ["No statistical disclosure control: the protection is the level and the rules of each table above."]
    out = [f"Counts from {dc['suppress_counts_from']} to {dc['suppress_counts_to']} are suppressed (left empty and "
           f"flagged); every other count is rounded to the nearest {dc['rounding_base']}; rates and intervals of a "
           "row with a suppressed count are withheld."]
    if protocol.margins:
        out.append("Further cells are suppressed so that no suppressed count can be worked out from the totals: "
                   + "; ".join(m["name"] for m in protocol.margins) + ".")
    return out


def retention_words(protocol: Protocol) -> str:
    r = protocol.doc["retention"]
    return (f"The recipient keeps each release at most {r['recipient_copy_days']} days; the secure zone deletes its "
            f"copy of a release after the same period. " + (r.get("on_expiry") or "").strip()).strip()
