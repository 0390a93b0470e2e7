"""Identifiers on the simulated records: each record's true person and address at its date, then
the agency's mess (typos, missing and swapped values) and its own identifier conventions."""

from __future__ import annotations

import warnings
from typing import Callable

import numpy as np
import polars as pl

import orchestration.partnership.demo.extracts as X
from orchestration.partnership.demo.addresses import MISSING, true_address_lines, written_address_lines
from orchestration.partnership.demo.output import apply_mess
from orchestration.partnership.demo.spec import EXTRACTS
from orchestration.partnership.demo.world import World

Key = tuple[str, str]


def attach(frame: pl.DataFrame, people_id: pl.DataFrame, spells: pl.DataFrame) -> pl.DataFrame:
    """Each record with its person's true identifiers and the address they lived at on its day."""
    f = frame.with_row_index("_row").with_columns(pl.col("_pid").cast(pl.Int64), pl.col("_day").cast(pl.Int64))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        f = f.sort("_day").join_asof(spells, left_on="_day", right_on="valid_from", by_left="_pid",
                                     by_right="pid", strategy="backward")
    f = f.join(people_id, left_on="_pid", right_on="pid", how="left").sort("_row").drop("_row")
    return f


def finish_identifiers(f: pl.DataFrame, spec: dict, rng: np.random.Generator | None = None,
                       key: Key | None = None) -> pl.DataFrame:
    """The identifier columns as the agency delivers them (its sex coding included); with `rng`,
    the address line of an extract whose system records one (`addresses.MISSING`)."""
    if rng is not None and key in MISSING:
        f = f.with_columns(written_address_lines(rng, f, MISSING[key]))
    sex = spec.get("sex")
    if sex == "nhs":
        sex_expr = pl.col("w_sex").replace_strict({"M": "1", "F": "2"}, default="9", return_dtype=pl.Utf8)
    elif sex == "mfu":
        sex_expr = pl.col("w_sex").fill_null("U")
    else:
        sex_expr = pl.col("w_sex").fill_null(pl.col("sex_true"))
    return f.with_columns(
        pl.col("w_nhs").alias("nhs_number"), pl.col("w_forename").alias("forename"),
        pl.col("w_surname").alias("surname"), pl.col("w_dob").alias("date_of_birth"),
        sex_expr.alias("sex"), pl.col("w_postcode").alias("postcode"), pl.col("uprn_true").alias("uprn"),
        pl.col("w_upn").alias("upn"))


def true_identities(world: World) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Each person's true identifiers, and their address spells (ordered by start)."""
    ppl = world.people
    people_id = ppl.select(
        "pid", "person_id", pl.col("nhs_number").alias("nhs_true"), pl.col("upn").cast(pl.Utf8).alias("upn_true"),
        pl.col("forename").alias("forename_true"), pl.col("surname").alias("surname_true"),
        X.as_date(ppl["dob"].to_numpy()).alias("date_of_birth_true"), pl.col("sex").alias("sex_true"), "is_canary")
    people_id = people_id.with_columns(pl.col("forename_true").alias("forename"), pl.col("surname_true").alias("surname"))
    spells = world.spells.select("pid", "valid_from", pl.col("uprn").alias("uprn_true"),
                                 pl.col("postcode").alias("postcode_true"), pl.col("lsoa_code").alias("lsoa_true"),
                                 pl.col("ward_code").alias("ward_true")).sort("valid_from")
    return people_id, true_address_lines(spells, world.addresses)


def identify(frames: dict[Key, pl.DataFrame], people_id: pl.DataFrame, spells: pl.DataFrame,
             rng: Callable[[str], np.random.Generator]) -> None:
    """Give every simulated frame (in place) its identifiers as its agency records them."""
    for key in list(frames):
        spec = EXTRACTS[key]
        f = attach(frames[key], people_id, spells)
        f = apply_mess(rng("mess/" + "/".join(key)), f, spec["nhs_missing"])
        frames[key] = finish_identifiers(f, spec, rng("address/" + "/".join(key)), key)
    csc = ("county_council", "children_social_care_referrals")
    r = rng("csc_upn")
    frames[csc] = frames[csc].with_columns(
        pl.when(pl.Series(r.random(frames[csc].height) < 0.15)).then(None).otherwise(pl.col("upn")).alias("upn"))
    hl = ("riverside_council", "homelessness_cases")
    frames[hl] = frames[hl].with_columns(pl.when(pl.col("_blank_uprn")).then(None).otherwise(pl.col("uprn")).alias("uprn"))
