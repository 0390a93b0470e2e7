"""Probabilistic matching with Splink (Fellegi-Sunter) on DuckDB.

The model compares forename, surname, date of birth, sex, postcode, NHS number and UPRN.
It is trained once (u by random sampling, m by expectation maximisation with a capped number
of training pairs) and saved as JSON under `data/linkage/model.json`; later nights load it.
Surname frequencies (the term-frequency adjustment) are computed once per model and kept by
the caller, so a pair gets the same probability every night and a night need only score
its new profiles (`predict` with `new_only`). The model file holds only parameters and SQL,
no identifying values.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import duckdb

# Thresholds on the match probability of a pair of records (documented in docs/linkage.md).
MATCH_THRESHOLD = 0.99  # at or above: the two records are linked
# From here up to MATCH_THRESHOLD: a borderline pair, for clerical review. Below it, pairs left
# apart were rarely the same person (docs/linkage.md gives the measurement): a reviewer would
# find almost nothing in them.
REVIEW_THRESHOLD = 0.85

# Caps that keep training bounded at county scale (training pairs, not records).
U_MAX_PAIRS = 5e6
EM_MAX_PAIRS = 1e6
SEED = 20261128

SPLINK_COLUMNS = ("unique_id", "forename", "surname", "dob", "sex", "postcode", "nhs_number", "uprn")


@dataclass(frozen=True)
class Prediction:
    """Pairs of profile ids scored at or above REVIEW_THRESHOLD, in the caller's connection."""
    table: str
    pairs: int


# The column whose agreement is adjusted by how common the value is.
TF_COLUMN = "surname"

# Candidate pairs: profiles equal on every key of at least one rule (docs/linkage.md, "How
# linkage grows"). A rule's pairs grow with the square of its blocks, so no rule may rest on
# a key that many people share: a date of birth alone is one (a default date, a spike of
# estimated ages), so it comes with a name and the other name's initial, or a postcode.
# Applied from here, not from the model file, so a change reaches a saved model (with
# SCORING_VERSION bumped, everything is scored again).
_DOB_DAY_MONTH_SET = ("substr(dob, 1, 4)", "least(substr(dob, 6, 2), substr(dob, 9, 2))",
                      "greatest(substr(dob, 6, 2), substr(dob, 9, 2))")
BLOCKING_KEYS: tuple[tuple[str, ...], ...] = (
    ("dob", "surname", "substr(forename, 1, 1)"),  # forename misspelt or shortened
    ("dob", "forename", "substr(surname, 1, 1)"),  # surname misspelt
    ("dob", "postcode"),  # names differ, same address
    ("forename", "surname", *_DOB_DAY_MONTH_SET),  # day and month of birth swapped
    ("surname", "postcode", "substr(forename, 1, 1)"),  # date of birth wrong, same address
)

def blocking_rules() -> list[dict]:
    """BLOCKING_KEYS as Splink writes rules into a model (SQL on aliases `l` and `r`)."""
    from splink import block_on

    return [block_on(*keys).get_blocking_rule("duckdb").as_dict() for keys in BLOCKING_KEYS]


def _settings():
    import splink.comparison_level_library as cll
    import splink.comparison_library as cl
    from splink import SettingsCreator, block_on

    forename = cl.CustomComparison(
        output_column_name="forename",
        comparison_description="forename: exact, swapped with surname, similar (Jaro-Winkler), initial",
        comparison_levels=[
            cll.NullLevel("forename"),
            cll.ExactMatchLevel("forename"),
            cll.ColumnsReversedLevel("forename", "surname", symmetrical=True),
            cll.JaroWinklerLevel("forename", 0.92),
            cll.JaroWinklerLevel("forename", 0.80),
            cll.CustomLevel("substr(forename_l, 1, 1) = substr(forename_r, 1, 1)", "same initial"),
            cll.ElseLevel(),
        ],
    )
    surname = cl.CustomComparison(
        output_column_name="surname",
        comparison_description="surname: exact (frequency adjusted), similar (Jaro-Winkler)",
        comparison_levels=[
            cll.NullLevel("surname"),
            cll.ExactMatchLevel("surname").configure(tf_adjustment_column="surname", tf_adjustment_weight=1.0),
            cll.JaroWinklerLevel("surname", 0.92),
            cll.JaroWinklerLevel("surname", 0.80),
            cll.ElseLevel(),
        ],
    )
    dob = cl.CustomComparison(
        output_column_name="dob",
        comparison_description="date of birth: exact, day and month swapped, one character apart, same year",
        comparison_levels=[
            cll.NullLevel("dob"),
            cll.ExactMatchLevel("dob"),
            cll.CustomLevel(
                "substr(dob_l, 1, 4) = substr(dob_r, 1, 4) and substr(dob_l, 6, 2) = substr(dob_r, 9, 2) "
                "and substr(dob_l, 9, 2) = substr(dob_r, 6, 2)", "day and month swapped"),
            cll.DamerauLevenshteinLevel("dob", 1),
            cll.CustomLevel("substr(dob_l, 1, 4) = substr(dob_r, 1, 4)", "same year"),
            cll.ElseLevel(),
        ],
    )
    return SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="unique_id",
        probability_two_random_records_match=1e-5,
        comparisons=[
            forename,
            surname,
            dob,
            cl.ExactMatch("sex"),
            cl.PostcodeComparison("postcode"),
            cl.ExactMatch("nhs_number"),
            cl.ExactMatch("uprn"),
        ],
        blocking_rules_to_generate_predictions=[block_on(*keys) for keys in BLOCKING_KEYS],
        retain_intermediate_calculation_columns=False,
        retain_matching_columns=False,
        additional_columns_to_retain=[],
    )


def _quiet() -> None:
    logging.getLogger("splink").setLevel(logging.WARNING)


def train(con: duckdb.DuckDBPyConnection, input_table: str, model_path: Path) -> dict:
    """Estimate the model's parameters on `input_table` and save it. Returns the model."""
    from splink import DuckDBAPI, Linker, block_on

    _quiet()
    db = DuckDBAPI(con)
    linker = Linker(db.register(input_table), _settings(), log_level=None)
    # Prior: pairs agreeing on name and date of birth are nearly all true matches.
    linker.training.estimate_probability_two_random_records_match(
        [block_on("forename", "surname", "dob"), block_on("nhs_number")], recall=0.8)
    linker.training.estimate_u_using_random_sampling(max_pairs=U_MAX_PAIRS, seed=SEED)
    # m of every comparison but date of birth: EM on pairs that share a date of birth.
    linker.training.estimate_parameters_using_expectation_maximisation(
        block_on("dob"), estimate_without_term_frequencies=True, max_pairs=EM_MAX_PAIRS)
    dob_m = _dob_m_from_nhs_number_pairs(con, db, input_table)
    if dob_m is None:  # too few NHS numbers to count on: EM on pairs that share a surname and initial
        linker.training.estimate_parameters_using_expectation_maximisation(
            block_on("surname", "substr(forename, 1, 1)"), estimate_without_term_frequencies=True,
            max_pairs=EM_MAX_PAIRS)
    model = linker.misc.save_model_to_json()
    linker.table_management.delete_tables_created_by_splink_from_db()
    if dob_m is not None:
        levels = [lv for c in model["comparisons"] if c["output_column_name"] == "dob"
                  for lv in c["comparison_levels"] if not lv.get("is_null_level")]
        for lv, m in zip(levels, dob_m, strict=True):
            lv["m_probability"] = m
    model_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = model_path.with_name(model_path.name + ".tmp")
    tmp.write_text(json.dumps(model, indent=2, sort_keys=True) + "\n")
    tmp.replace(model_path)  # never half a model
    return model


# Fewest profile pairs sharing an NHS number (both with a date of birth) to learn from them.
MIN_LABEL_PAIRS = 100


def _dob_m_from_nhs_number_pairs(con: duckdb.DuckDBPyConnection, db, input_table: str) -> list[float] | None:
    """m of each date-of-birth level, counted on pairs of profiles that share a valid NHS number
    (true matches, whatever else differs), with half a pair added to every level so that a
    level never seen is unlikely rather than impossible. None when there are too few pairs.

    Why not EM: EM on pairs sharing a surname and forename initial (the only blocking that
    leaves date of birth free) learns from families as much as from people: parent and child
    at one address agree on everything but date of birth, so EM concluded that one true match
    in eleven has an unrelated date of birth, and household members were linked."""
    from splink import Linker

    n = con.execute(f"""select coalesce(sum(n * (n - 1) / 2), 0) from (
                            select count(*) as n from {input_table}
                            where nhs_number is not null and dob is not null group by nhs_number)""").fetchall()[0][0]
    if n < MIN_LABEL_PAIRS:
        return None
    labelled = Linker(db.register(input_table), _settings(), log_level=None)
    labelled.training.estimate_m_from_label_column("nhs_number")
    model = labelled.misc.save_model_to_json()
    labelled.table_management.delete_tables_created_by_splink_from_db()
    observed = [lv.get("m_probability") for c in model["comparisons"] if c["output_column_name"] == "dob"
                for lv in c["comparison_levels"] if not lv.get("is_null_level")]
    shares = [m if isinstance(m, (int, float)) else 0.0 for m in observed]
    return [(share * n + 0.5) / (n + 0.5 * len(shares)) for share in shares]


def model_hash(model_path: Path) -> str:
    """Identifies the model a stored score came from (a retrained model invalidates them)."""
    return hashlib.sha256(Path(model_path).read_bytes()).hexdigest()


def term_frequencies_sql(input_table: str) -> str:
    """Each surname's share of the profiles that have one (as Splink computes it), with the
    columns Splink expects of a registered lookup: `surname`, `tf_surname`."""
    c = TF_COLUMN
    return f"""select {c}, cast(count(*) as double) / sum(count(*)) over () as tf_{c}
               from {input_table} where {c} is not null group by {c}"""


def _symmetric_blocking_rules(model: dict) -> list[str] | None:
    """The model's blocking rules (SQL on aliases `l` and `r`) when every one is a conjunction of
    equalities of the same expression of either side, so that it holds for (old, new) exactly
    when it holds for (new, old); else None."""
    rules = [r["blocking_rule"] for r in model.get("blocking_rules_to_generate_predictions") or []]
    for rule in rules:
        body = rule.strip()
        if not (body.startswith("(") and body.endswith(")")):
            return None
        for term in re.split(r"\)\s+AND\s+\(", body[1:-1]):
            left, eq, right = term.strip().partition(" = ")
            if not eq or "l." not in left or "r." in left or left.replace("l.", "r.") != right:
                return None
    return rules or None


def candidates_sql(input_table: str, new: str, rules: list[str]) -> str:
    """The `unique_id` of the stored profiles (`not is_new`) of `input_table` that some profile of
    `new` blocks with under one of `rules` (symmetric: see `_symmetric_blocking_rules`)."""
    return " union ".join(f"select l.unique_id from {input_table} l semi join {new} r on {rule} where not l.is_new"
                          for rule in rules)


def predict(con: duckdb.DuckDBPyConnection, input_table: str, model_path: Path, output_table: str,
            tf_table: str, new_only: bool = False) -> Prediction:
    """Score candidate pairs with the saved model; keep pairs at or above the review threshold.

    `tf_table` holds the surname frequencies to use (see `term_frequencies_sql`). With
    `new_only`, `input_table` has a boolean `is_new` and only pairs with at least one new
    profile are scored (new with new, new with old): the pairs a full run would add to those
    already scored, with the same probabilities, since the model and frequencies are fixed.
    Old profiles no new one blocks with are left out of `predict_between` beforehand (its pairs
    are those of the blocking rules: the same pairs, without joining a million old profiles)."""
    from splink import DuckDBAPI, Linker

    _quiet()
    db = DuckDBAPI(con)
    model = json.loads(Path(model_path).read_text())
    model["blocking_rules_to_generate_predictions"] = blocking_rules()
    cols = ", ".join(SPLINK_COLUMNS)
    con.execute(f"create or replace temp view _splink_new as select {cols} from {input_table}"
                + (" where is_new" if new_only else ""))
    old_rows = "not is_new" if new_only else "false"
    rules = _symmetric_blocking_rules(model) if new_only else None
    if rules:
        # The stored profiles some new profile blocks with: the only ones predict_between can pair.
        con.execute(f"create or replace temp table _splink_candidates as {candidates_sql(input_table, '_splink_new', rules)}")
        old_rows += " and unique_id in (select unique_id from _splink_candidates)"
    con.execute(f"create or replace temp view _splink_old as select {cols} from {input_table} where {old_rows}")
    new, old = db.register("_splink_new"), db.register("_splink_old")
    linker = Linker(new, model, log_level=None)
    linker.table_management.register_term_frequency_lookup(db.register(tf_table), TF_COLUMN)
    parts = [linker.inference.predict_within(new, threshold_match_probability=REVIEW_THRESHOLD, warning_mode="never")]
    if new_only:
        parts.append(linker.inference.predict_between(
            new, old, threshold_match_probability=REVIEW_THRESHOLD, warning_mode="never"))
    union = " union all ".join(
        f"""select least(unique_id_l, unique_id_r) as a, greatest(unique_id_l, unique_id_r) as b,
                   match_weight, match_probability from {df.physical_name}""" for df in parts)
    con.execute(f"create or replace table {output_table} as {union}")
    n = con.execute(f"select count(*) from {output_table}").fetchall()[0][0]
    linker.table_management.delete_tables_created_by_splink_from_db()
    con.execute("drop view _splink_old")
    con.execute("drop view _splink_new")
    con.execute("drop table if exists _splink_candidates")
    return Prediction(output_table, n)
