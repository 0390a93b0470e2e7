"""Which stored profiles an incremental night's Splink scoring needs: those a new profile blocks with."""

from __future__ import annotations

import itertools
import random

import duckdb
import pytest

import orchestration.partnership.linkage.model as model

pytestmark = pytest.mark.dbt_free

RULES = [  # as Splink writes the model's rules into model.json
    '(l."dob" = r."dob") AND (SUBSTRING(l.surname, 1, 1) = SUBSTRING(r.surname, 1, 1))',
    '(l."dob" = r."dob") AND (l."postcode" = r."postcode")',
    '(l."forename" = r."forename") AND (l."surname" = r."surname") AND (SUBSTRING(l.dob, 1, 4) = SUBSTRING(r.dob, 1, 4))',
]


def _blocks(a: dict, b: dict) -> bool:
    """The rules above, in Python (null never equals)."""
    eq = lambda x, y: x is not None and y is not None and x == y  # noqa: E731
    first = lambda v: v[:1] if v is not None else None  # noqa: E731
    year = lambda v: v[:4] if v is not None else None  # noqa: E731
    return ((eq(a["dob"], b["dob"]) and eq(first(a["surname"]), first(b["surname"])))
            or (eq(a["dob"], b["dob"]) and eq(a["postcode"], b["postcode"]))
            or (eq(a["forename"], b["forename"]) and eq(a["surname"], b["surname"]) and eq(year(a["dob"]), year(b["dob"]))))


def test_only_rules_equal_on_both_sides_are_used_to_leave_old_profiles_out():
    assert model._symmetric_blocking_rules({"blocking_rules_to_generate_predictions": [
        {"blocking_rule": r} for r in RULES]}) == RULES
    for odd in ('(l."dob" = r."dob") AND (l."surname" = r."forename")',  # not the same expression on both sides
                '(l."dob" = r."dob") OR (l."postcode" = r."postcode")',
                'l."dob" <> r."dob"', '(levenshtein(l.surname, r.surname) < 2)'):
        assert model._symmetric_blocking_rules({"blocking_rules_to_generate_predictions": [
            {"blocking_rule": RULES[0]}, {"blocking_rule": odd}]}) is None
    assert model._symmetric_blocking_rules({"blocking_rules_to_generate_predictions": []}) is None


def test_the_old_profiles_kept_are_exactly_those_some_new_profile_blocks_with():
    rng = random.Random(7)
    pick = lambda *vs: rng.choice([*vs, None])  # noqa: E731
    rows = [{"unique_id": i, "is_new": i % 9 == 0, "forename": pick("ann", "bob", "cy"), "surname": pick("ash", "amos", "berg"),
             "dob": pick("1980-01-02", "1980-03-04", "1991-01-02"), "postcode": pick("A1 1AA", "B2 2BB")} for i in range(400)]
    con = duckdb.connect()
    con.execute("create table t (unique_id bigint, is_new boolean, forename varchar, surname varchar, dob varchar, postcode varchar)")
    con.executemany("insert into t values (?, ?, ?, ?, ?, ?)", [tuple(r.values()) for r in rows])
    con.execute("create view n as select * from t where is_new")
    got = {u for (u,) in con.execute(model.candidates_sql("t", "n", RULES)).fetchall()}
    new = [r for r in rows if r["is_new"]]
    want = {o["unique_id"] for o, n in itertools.product([r for r in rows if not r["is_new"]], new) if _blocks(o, n)}
    assert got == want and 0 < len(want) < 400 - len(new)
