"""Linkage quality against the demo generator's truth (tests, benchmark, demo report).

The pipeline never reads the truth; this module does, to measure the pipeline. Every
delivered row is a record; two records are a true pair when the generator made them about
the same person, a predicted pair when linkage gave them the same `person_id`. Precision =
true predicted pairs / predicted pairs; recall = true predicted pairs / true pairs; both
overall and for each pair of agencies (a record of agency A with a record of agency B).

    python -m orchestration.partnership.linkage.quality [DATA_DIR]
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from orchestration.partnership.linkage.household_quality import evaluate_households
from orchestration.partnership.settings import Settings, get_settings

PRECISION_TARGET = 0.99
RECALL_TARGET = 0.95


@dataclass
class PairCounts:
    true_positive: int
    predicted: int
    actual: int

    @property
    def precision(self) -> float | None:
        return self.true_positive / self.predicted if self.predicted else None

    @property
    def recall(self) -> float | None:
        return self.true_positive / self.actual if self.actual else None

    def as_dict(self) -> dict:
        return {"true_positive_pairs": self.true_positive, "predicted_pairs": self.predicted,
                "true_pairs": self.actual, "precision": self.precision, "recall": self.recall}


@dataclass
class Quality:
    records: int
    records_unmatched_to_truth: int
    persons_predicted: int
    persons_true: int
    overall: PairCounts
    by_agency_pair: dict[tuple[str, str], PairCounts] = field(default_factory=dict)
    households: dict | None = None  # household_quality.evaluate_households

    @property
    def meets_targets(self) -> bool:
        return (self.overall.precision or 0) >= PRECISION_TARGET and (self.overall.recall or 0) >= RECALL_TARGET

    def as_dict(self) -> dict:
        return {
            "records": self.records, "records_unmatched_to_truth": self.records_unmatched_to_truth,
            "persons_predicted": self.persons_predicted, "persons_true": self.persons_true,
            "targets": {"precision": PRECISION_TARGET, "recall": RECALL_TARGET}, "meets_targets": self.meets_targets,
            "overall": self.overall.as_dict(),
            "by_agency_pair": {f"{a} / {b}": c.as_dict() for (a, b), c in sorted(self.by_agency_pair.items())},
            "households": self.households,
        }

    def table(self) -> str:
        """A plain-text table for test output and the console."""
        def pct(v):
            return "   n/a" if v is None else f"{100 * v:6.2f}"
        lines = [f"linkage quality: {self.records} records, {self.persons_predicted} persons found, "
                 f"{self.persons_true} true persons",
                 f"{'agency pair':<52} {'pairs':>9} {'precision%':>10} {'recall%':>8}",
                 f"{'OVERALL':<52} {self.overall.actual:>9} {pct(self.overall.precision):>10} {pct(self.overall.recall):>8}"]
        for (a, b), c in sorted(self.by_agency_pair.items()):
            lines.append(f"{a + ' / ' + b:<52} {c.actual:>9} {pct(c.precision):>10} {pct(c.recall):>8}")
        if self.households:
            h = self.households
            lines.append(f"{'households at quarter ends (people at one address)':<52} {h['true_pairs']:>9} "
                         f"{pct(h['precision']):>10} {pct(h['recall']):>8}")
            e = h["everyone"]
            lines.append(f"{'  the same over everyone with a record':<52} {e['true_pairs']:>9} "
                         f"{pct(e['precision']):>10} {pct(e['recall']):>8}")
        lines.append(f"targets: precision >= {100 * PRECISION_TARGET:.0f}%, recall >= {100 * RECALL_TARGET:.0f}%: "
                     f"{'met' if self.meets_targets else 'NOT met'}")
        return "\n".join(lines)


_PAIRS = "sum(n * (n - 1) / 2)::hugeint"


def evaluate(settings: Settings) -> Quality:
    """Compare `linkage.person_records` with `demo_truth/records.parquet`."""
    truth = settings.truth_dir / "records.parquet"
    con = duckdb.connect()
    try:
        con.execute(f"attach '{settings.warehouse_path}' as wh (read_only)")
        con.execute(f"""create table labelled as
            select p.person_id as pred, t.person_id as truth, d.agency, p.contract_id, p.delivery_id, p.row_number
            from wh.linkage.person_records p
            join wh.ops.deliveries d using (delivery_id)
            left join read_parquet('{truth}') t
              on t.agency = d.agency and t.extract = d.extract and t.file_name = d.file_name
             and t.row_number = p.row_number""")
        records, unmatched, n_pred, n_true = con.execute(
            "select count(*), count(*) filter (where truth is null), count(distinct pred), count(distinct truth) from labelled"
        ).fetchall()[0]
        con.execute("delete from labelled where truth is null")

        def counts(sql_tp: str, sql_pred: str, sql_true: str) -> PairCounts:
            return PairCounts(*(int(con.execute(q).fetchall()[0][0] or 0) for q in (sql_tp, sql_pred, sql_true)))

        overall = counts(
            f"select {_PAIRS} from (select count(*) n from labelled group by pred, truth)",
            f"select {_PAIRS} from (select count(*) n from labelled group by pred)",
            f"select {_PAIRS} from (select count(*) n from labelled group by truth)")
        by_pair: dict[tuple[str, str], PairCounts] = {}
        for key, col in (("tp", "pred, truth"), ("pred", "pred"), ("true", "truth")):
            rows = con.execute(f"""
                with c as (select {col}, agency, count(*)::hugeint as n from labelled group by all)
                select a.agency, b.agency,
                       sum(case when a.agency = b.agency then a.n * (a.n - 1) / 2 else a.n * b.n end)
                from c a join c b using ({col}) where a.agency <= b.agency group by all""").fetchall()
            for a, b, n in rows:
                pc = by_pair.setdefault((a, b), PairCounts(0, 0, 0))
                setattr(pc, {"tp": "true_positive", "pred": "predicted", "true": "actual"}[key], int(n))
        households = evaluate_households(con, settings)
        return Quality(records, unmatched, n_pred, n_true, overall, by_pair, households)
    finally:
        con.close()


def write_quality_report(settings: Settings, quality: Quality) -> Path:
    out = settings.reports_dir / "linkage"
    out.mkdir(parents=True, exist_ok=True)
    (out / "linkage_quality.json").write_text(json.dumps(quality.as_dict(), indent=2, sort_keys=True) + "\n")
    (out / "linkage_quality.txt").write_text(quality.table() + "\n")
    return out / "linkage_quality.json"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    settings = Settings(Path(argv[0]).resolve()) if argv else get_settings()
    quality = evaluate(settings)
    print(quality.table())
    print(f"written to {write_quality_report(settings, quality)}")
    return 0 if quality.meets_targets else 1


if __name__ == "__main__":
    raise SystemExit(main())
