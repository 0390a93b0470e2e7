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


def test_the_rules_in_use_meet_only_the_pairs_they_are_for():
    """The code's rules (applied to every model): each an equality of one expression on both
    sides, and a date of birth never without a name and the other name's initial, or a postcode."""
    rules = [r["blocking_rule"] for r in model.blocking_rules()]
    assert model._symmetric_blocking_rules({"blocking_rules_to_generate_predictions": model.blocking_rules()}) == rules
    con = duckdb.connect()
    con.execute("create table t (unique_id bigint, is_new boolean, forename varchar, surname varchar, dob varchar, postcode varchar)")
    new = (0, True, "ann", "ash", "1980-03-04", "A1 1AA")
    old = {1: ("bill", "ash", "1980-03-04", "B2 2BB"),  # another forename initial, another address: apart
           2: ("anne", "ash", "1980-03-04", "B2 2BB"),  # forename misspelt
           3: ("ann", "asch", "1980-03-04", "B2 2BB"),  # surname misspelt
           4: ("ann", "ash", "1980-04-03", "B2 2BB"),  # day and month swapped
           5: ("ann", "ash", "1980-03-05", "B2 2BB"),  # day wrong, another address: apart
           6: ("ann", "ash", "1980-03-05", "A1 1AA"),  # day wrong, same address
           7: ("zoe", "berg", "1980-03-04", "A1 1AA"),  # same birthday and address
           8: ("cy", "ash", "1980-03-04", "C3 3CC")}  # same birthday and surname only: apart
    con.executemany("insert into t values (?, ?, ?, ?, ?, ?)", [new] + [(k, False, *v) for k, v in old.items()])
    con.execute("create view n as select * from t where is_new")
    assert {u for (u,) in con.execute(model.candidates_sql("t", "n", rules)).fetchall()} == {2, 3, 4, 6, 7}
