"""Probabilistic matching with Splink (Fellegi-Sunter) on DuckDB.

The model compares forename, surname, date of birth, sex, postcode, NHS number and UPRN.
It is trained once (u by random sampling, m by expectation maximisation with a capped number
of training pairs) and saved as JSON under `data/linkage/model.json`; later nights load it,
so that the same pair gets the same probability every night. The model file holds only
parameters and SQL, no identifying values.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import duckdb

# Thresholds on the match probability of a pair of records (documented in docs/linkage.md).
MATCH_THRESHOLD = 0.99  # at or above: the two records are linked
REVIEW_THRESHOLD = 0.50  # from here up to MATCH_THRESHOLD: a borderline pair, for clerical review

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
        blocking_rules_to_generate_predictions=[
            block_on("dob", "substr(surname, 1, 1)"),
            block_on("dob", "substr(forename, 1, 1)"),
            block_on("dob", "postcode"),
            block_on("forename", "surname", "substr(dob, 1, 4)"),
            block_on("surname", "postcode", "substr(forename, 1, 1)"),
        ],
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
    # m: two EM passes, each blocking on fields the other estimates, with capped pairs.
    linker.training.estimate_parameters_using_expectation_maximisation(
        block_on("dob"), estimate_without_term_frequencies=True, max_pairs=EM_MAX_PAIRS)
    linker.training.estimate_parameters_using_expectation_maximisation(
        block_on("surname", "substr(forename, 1, 1)"), estimate_without_term_frequencies=True, max_pairs=EM_MAX_PAIRS)
    model = linker.misc.save_model_to_json()
    linker.table_management.delete_tables_created_by_splink_from_db()
    model_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = model_path.with_name(model_path.name + ".tmp")
    tmp.write_text(json.dumps(model, indent=2, sort_keys=True) + "\n")
    tmp.replace(model_path)  # never half a model
    return model


def predict(con: duckdb.DuckDBPyConnection, input_table: str, model_path: Path, output_table: str) -> Prediction:
    """Score candidate pairs with the saved model; keep pairs at or above the review threshold."""
    from splink import DuckDBAPI, Linker

    _quiet()
    db = DuckDBAPI(con)
    model = json.loads(Path(model_path).read_text())
    linker = Linker(db.register(input_table), model, log_level=None)
    df = linker.inference.predict(threshold_match_probability=REVIEW_THRESHOLD, warning_mode="never")
    con.execute(f"""create or replace table {output_table} as
                    select least(unique_id_l, unique_id_r) as a, greatest(unique_id_l, unique_id_r) as b,
                           match_weight, match_probability
                    from {df.physical_name}""")
    n = con.execute(f"select count(*) from {output_table}").fetchall()[0][0]
    linker.table_management.delete_tables_created_by_splink_from_db()
    return Prediction(output_table, n)
