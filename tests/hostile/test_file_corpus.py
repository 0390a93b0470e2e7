"""Every file of the second corpus gets the outcome its contract says, from the engine and from
`partnership check` alike: refused with a reason naming the file, the column or cell and the
rule (never a value, never a trace), or read with exactly the rows it broke quarantined."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from orchestration.partnership.contracts.model import Contract, load_contracts
from orchestration.partnership.validation.engine import Assessment, assess
from orchestration.partnership.validation.readers import ROW_NUMBER
from orchestration.partnership.validation.rows import RULES
from orchestration.partnership.warehouse.files import sha256_file
from tests.conftest import DEMO_AS_OF, use_data_dir
from tests.hostile.file_corpus import FileCase, build_file_cases
from tests.hostile.test_corpus import CASES as NIGHT_CASES
from tests.hostile.test_corpus import TRACE

pytestmark = pytest.mark.dbt_free


def _ids() -> list[str]:
    src = Path(__file__).with_name("file_corpus.py").read_text()
    return re.findall(r'(?:refused|pq_case|xl|enc)\(\s*"([a-z0-9_]+)"', src)


CASES = _ids()


@dataclass
class Judged:
    contracts: dict[str, Contract]
    cases: dict[str, FileCase]
    paths: dict[str, Path]
    verdicts: dict[str, Assessment]


@pytest.fixture(scope="session")
def judged(tmp_path_factory, saved_environment) -> Judged:
    from orchestration.partnership.demo import generate

    data_dir = tmp_path_factory.mktemp("file-corpus")
    settings = use_data_dir(data_dir)
    generate(data_dir, preset="small", seed=42, as_of=DEMO_AS_OF)
    contracts = load_contracts(settings.contracts_dir)
    cases = {c.id: c for c in build_file_cases(settings.landing_dir, settings.truth_dir)}
    folder = data_dir / "cases"
    paths, verdicts = {}, {}
    for case in cases.values():
        path = folder / case.source[0] / case.source[1] / case.file_name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(case.data)
        paths[case.id] = path
        verdicts[case.id] = assess(path, contracts[case.contract_id], file_name=case.file_name, sha256=sha256_file(path),
                                   arrived_at=case.arrived_at)
    return Judged(contracts, cases, paths, verdicts)


def test_the_two_corpora_hold_at_least_eighty_cases_with_distinct_names(judged):
    assert sorted(judged.cases) == sorted(CASES)
    assert len(set(CASES) | set(NIGHT_CASES)) == len(CASES) + len(NIGHT_CASES) >= 80


@pytest.mark.parametrize("case_id", CASES)
def test_each_file_meets_its_contract_with_a_reason_a_data_owner_understands(judged, case_id):
    case, a = judged.cases[case_id], judged.verdicts[case_id]
    if case.outcome == "rejected":
        assert (a.status, a.reason_code) == ("rejected", case.code), a.reason
        assert case.file_name in a.reason, "the reason names the file"
        for fragment in case.says:
            assert fragment in a.reason, (fragment, a.reason)
        for fragment in case.never_says:
            assert fragment not in a.reason, fragment
        assert not TRACE.search(a.reason), a.reason
        if not any(r.level == "batch" and not r.passed for r in a.rules):
            assert a.rows_read == 0 and a.text is None, "a file refused whole is not read into rows"
        return
    assert a.status == "accepted", a.reason
    assert a.rows_read == case.rows == a.rows_valid + a.rows_quarantined
    quarantined = {r[ROW_NUMBER]: set(r[RULES]) for r in a.rows.quarantine.select(ROW_NUMBER, RULES).iter_rows(named=True)}
    assert quarantined == case.quarantined, "exactly the broken rows, with exactly the rules they break"
    for (row, column), value in case.stored.items():
        assert a.text.filter(a.text[ROW_NUMBER] == row).get_column(column).to_list() == [value], (row, column)


@pytest.mark.parametrize("case_id", CASES)
def test_partnership_check_gives_the_nights_verdict_on_each_file(judged, case_id, capsys):
    from orchestration.partnership.cli import main

    case, night = judged.cases[case_id], judged.verdicts[case_id]
    capsys.readouterr()
    code = main(["check", str(judged.paths[case_id]), "--contract", case.contract_id,
                 "--arrived-at", case.arrived_at.isoformat(timespec="minutes"), "--json"])
    out = capsys.readouterr()
    assert code == (0 if night.accepted else 1)
    doc = json.loads(out.out)
    assert (doc["status"], doc["reason_code"], doc["reason"]) == (night.status, night.reason_code, night.reason)
    assert (doc["rows_read"], doc["rows_quarantined"]) == (night.rows_read, night.rows_quarantined)
    assert not TRACE.search(out.err)
