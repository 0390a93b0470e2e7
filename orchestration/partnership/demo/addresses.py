"""Address lines as the agencies' case systems record them.

Case management systems (social care, the school census, police, the hospital's patient
administration system fed by the NHS spine, the housing register) hold each person's full
address; the extracts carry its first line (house number and street) beside the postcode. The
line is the gazetteer's (`reference/address_lookup.csv`, the council's LLPG) for the address the
person lived at on the record's day, written with the mess such systems have: missing on some
rows, capitals, street types abbreviated (Rd, St, Ave), a comma after the number, doubled spaces,
now and then a mistyped street (which matches no address exactly) or a wrong house number (which
matches a neighbour's). People living outside the district have a line no gazetteer holds."""

from __future__ import annotations

import numpy as np
import polars as pl

# Extracts whose systems record an address, and the share of their rows that leave it blank.
MISSING = {
    ("county_council", "children_social_care_referrals"): 0.05,
    ("county_council", "adult_social_care_referrals"): 0.05,
    ("county_council", "school_attendance"): 0.03,
    ("county_police", "incidents"): 0.15,
    ("riverside_acute", "emergency_admissions"): 0.08,
    ("riverside_acute", "ae_attendances"): 0.10,
    ("riverside_council", "homelessness_cases"): 0.05,
}
ABBREVIATIONS = {"Road": "Rd", "Street": "St", "Avenue": "Ave", "Close": "Cl", "Lane": "Ln", "Drive": "Dr",
                 "Crescent": "Cres", "Gardens": "Gdns", "Terrace": "Terr", "Place": "Pl", "Court": "Ct"}
EXTERNAL_STREETS = ["London Road", "High Street", "Station Road", "Church Lane", "Victoria Street"]
LETTERS = "abcdefghijklmnoprstuwy"


def true_address_lines(spells: pl.DataFrame, addresses: pl.DataFrame) -> pl.DataFrame:
    """The spells with each address's first line (`address_line_true`); outside the district
    (no address in the gazetteer) a made-up line of the person's own."""
    lines = addresses.select(pl.col("uprn").alias("uprn_true"), pl.col("address_line").alias("address_line_true"))
    out = spells.join(lines, on="uprn_true", how="left").sort("valid_from")
    pid = out["pid"].to_numpy()
    external = [f"{p % 150 + 1} {EXTERNAL_STREETS[p % len(EXTERNAL_STREETS)]}" for p in pid.tolist()]
    return out.with_columns(pl.when(pl.col("address_line_true").is_null() & pl.col("postcode_true").is_not_null())
                            .then(pl.Series(external, dtype=pl.Utf8)).otherwise(pl.col("address_line_true"))
                            .alias("address_line_true"))


def _typo(rng: np.random.Generator, street: str) -> str:
    i = int(rng.integers(1, max(len(street) - 1, 2)))
    return street[:i] + LETTERS[int(rng.integers(0, len(LETTERS)))] + street[i + 1:]


def written_address_lines(rng: np.random.Generator, f: pl.DataFrame, missing: float) -> pl.Series:
    """`address_line` as the agency wrote it for each row of `f` (which has `address_line_true`)."""
    true = f["address_line_true"].to_list()
    n = len(true)
    u = rng.random((n, 7))
    out: list[str | None] = []
    for i, line in enumerate(true):
        if line is None or u[i, 0] < missing:
            out.append(None)
            continue
        number, _, street = line.partition(" ")
        if u[i, 1] < 0.01:  # a mistyped street: no exact match
            street = _typo(rng, street)
        if u[i, 2] < 0.002 and number.isdigit():  # a wrong house number: a neighbour's address
            number = str(int(number) + 1)
        head, _, kind = street.rpartition(" ")
        if head and u[i, 3] < 0.25 and kind in ABBREVIATIONS:
            street = f"{head} {ABBREVIATIONS[kind]}"
        text = f"{number}{',' if u[i, 4] < 0.10 else ''}{'  ' if u[i, 5] < 0.05 else ' '}{street}"
        if u[i, 6] < 0.20:
            text = text.upper()
        elif u[i, 6] < 0.25:
            text = text.lower()
        out.append(text)
    return pl.Series("address_line", out, dtype=pl.Utf8)
