"""Data-owner reports: one per delivery (JSON and HTML) and an index per agency.

Everything an agency's data owner sees is written under `reports/contracts/<agency>/`,
built only from that agency's deliveries: no page, link or figure names another agency.
Example values of identifying columns are masked by the engine before they get here.
"""

from __future__ import annotations

import html
import json
import os
import re
from collections import defaultdict
from pathlib import Path

from orchestration.partnership.contracts.model import Contract
from orchestration.partnership.validation.engine import Assessment

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem;max-width:70rem;color:#1b1b1b}
table{border-collapse:collapse;margin:1rem 0}td,th{border:1px solid #ccc;padding:.3rem .6rem;text-align:left;vertical-align:top}
th{background:#f2f2f2}.pass{color:#0b6b2b;font-weight:600}.fail{color:#b00020;font-weight:600}.warn{color:#8a5a00;font-weight:600}
code{background:#f6f6f6;padding:0 .2rem}.muted{color:#666}
"""


def report_stem(delivery_id: int | str, file_name: str) -> str:
    return f"{delivery_id}_{re.sub(r'[^A-Za-z0-9._-]', '_', file_name)}"


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def recorded_late(delivery: dict) -> bool:
    """Whether the engine judged a row of ops.deliveries late: its `late` warning, or its rejection for it."""
    return any(w.startswith("late") for w in json.loads(delivery.get("warnings") or "[]")) or delivery.get("reason_code") == "late"


def _verdict(ok: bool, severity: str) -> str:
    if ok:
        return '<span class="pass">pass</span>'
    return '<span class="fail">fail</span>' if severity == "error" else '<span class="warn">warning</span>'


def delivery_report(a: Assessment, contract: Contract, delivery_id: int | str | None) -> dict:
    doc = a.to_dict()
    doc["delivery_id"] = delivery_id
    doc["contract"] = {"id": contract.id, "version": contract.version, "title": contract.title,
                       "owner": contract.owner_role, "late_policy": contract.delivery.late,
                       "due_by": contract.delivery.due_by, "timezone": contract.delivery.timezone}
    return doc


def _html_delivery(doc: dict) -> str:
    e = html.escape
    c = doc["contract"]
    status = doc["status"]
    head = (f"<h1>{e(doc['file_name'])}</h1><p>{e(c['title'])} — contract <code>{e(c['id'])}</code> v{e(c['version'])}</p>"
            f"<table><tr><th>verdict</th><td class=\"{'pass' if status == 'accepted' else 'fail'}\">{e(status)}"
            f"{(' — ' + e(doc['reason'])) if doc.get('reason') else ''}</td></tr>"
            f"<tr><th>delivery</th><td>{e(str(doc.get('delivery_id') or '(checked before sending)'))}</td></tr>"
            f"<tr><th>sha256</th><td><code>{e(doc['sha256'])}</code></td></tr>"
            f"<tr><th>arrived</th><td>{e(doc['arrived_at'] or '')}</td></tr>"
            f"<tr><th>due by</th><td>{e(doc['due_at'] or 'no due time')} {'(late)' if doc['late'] else ''}</td></tr>"
            f"<tr><th>rows</th><td>{doc['rows_read']} read = {doc['rows_valid']} valid + {doc['rows_quarantined']} quarantined</td></tr>"
            "</table>")
    warn = "".join(f"<li>{e(w)}</li>" for w in doc["warnings"])
    rows = []
    for r in doc["rules"]:
        ex = "<br>".join(
            f"row {x['row']}: " + ", ".join(f"{e(k)}=<code>{e(str(v)) if v is not None else '(blank)'}</code>" for k, v in x["values"].items())
            for x in r["examples"])
        rows.append(f"<tr><td><code>{e(r['rule'])}</code></td><td>{e(r['level'])}</td><td>{_verdict(r['passed'], r['severity'])}</td>"
                    f"<td>{'' if r['failing_rows'] is None else r['failing_rows']}</td><td>{e(r['observed'] or '')}</td>"
                    f"<td>{e(r['expected'] or '')}</td><td>{ex}</td></tr>")
    return (f"<!doctype html><html><head><meta charset=\"utf-8\"><title>{e(doc['file_name'])}</title><style>{_STYLE}</style></head><body>"
            f"<p><a href=\"index.html\">All deliveries</a></p>{head}"
            + (f"<h2>Warnings</h2><ul>{warn}</ul>" if warn else "")
            + "<h2>Rules</h2><p class=\"muted\">Example values of identifying columns show their shape only "
              "(9 = digit, A/a = letter). Row numbers count data rows after the header, from 1.</p>"
              "<table><tr><th>rule</th><th>level</th><th>result</th><th>failing rows</th><th>observed</th><th>expected</th><th>examples</th></tr>"
            + "".join(rows) + "</table></body></html>")


def write_delivery_report(reports_dir: Path, a: Assessment, contract: Contract, delivery_id: int | str | None) -> Path:
    """JSON and HTML report of one delivery; returns the HTML path."""
    doc = delivery_report(a, contract, delivery_id)
    folder = Path(reports_dir) / "contracts" / contract.agency
    stem = report_stem(delivery_id if delivery_id is not None else "check", a.file_name)
    _write(folder / f"{stem}.json", json.dumps(doc, indent=2, sort_keys=True, default=str) + "\n")
    _write(folder / f"{stem}.html", _html_delivery(doc))
    return folder / f"{stem}.html"


def write_agency_index(reports_dir: Path, agency: str, deliveries: list[dict]) -> Path:
    """The agency's delivery history: every delivery (newest first), whether on time, and failures by rule over time.

    `deliveries` must be this agency's own rows of ops.deliveries (the caller filters by agency)."""
    assert all(d["agency"] == agency for d in deliveries), "an agency index holds only that agency's deliveries"
    e = html.escape
    folder = Path(reports_dir) / "contracts" / agency
    rows = []
    by_rule: dict[str, dict[str, int]] = defaultdict(dict)
    days: list[str] = []
    for d in sorted(deliveries, key=lambda d: (d["arrived_at"], d["delivery_id"]), reverse=True):
        late = recorded_late(d)
        stem = report_stem(d["delivery_id"], d["file_name"])
        link = f'<a href="{e(stem)}.html">{e(d["file_name"])}</a>' if (folder / f"{stem}.html").exists() else e(d["file_name"])
        rows.append(
            f"<tr><td>{d['delivery_id']}</td><td>{e(d['extract'] or '')}</td><td>{link}</td><td>{e(str(d['arrived_at'])[:16])}</td>"
            f"<td class=\"{'fail' if late else 'pass'}\">{'late' if late else 'on time'}</td>"
            f"<td class=\"{'pass' if d['status'] == 'accepted' else 'fail'}\">{e(d['status'])}</td>"
            f"<td>{e(d.get('reason') or '')}</td><td>{d.get('rows_read') if d.get('rows_read') is not None else ''}</td>"
            f"<td>{d.get('rows_quarantined') if d.get('rows_quarantined') is not None else ''}</td></tr>")
        day = str(d["arrived_at"])[:10]
        if day not in days:
            days.append(day)
        counts = json.loads(d.get("rule_counts") or "{}")
        if d["status"] == "rejected" and d.get("reason_code"):
            counts = {f"(file) {d['reason_code']}": 1}
        for rule, n in counts.items():
            key = f"{d['extract']}: {rule}"
            by_rule[key][day] = by_rule[key].get(day, 0) + n
    days.sort()
    trend = "".join(
        f"<tr><td><code>{e(rule)}</code></td>" + "".join(f"<td>{by_rule[rule].get(day, '')}</td>" for day in days) + "</tr>"
        for rule in sorted(by_rule))
    page = (f"<!doctype html><html><head><meta charset=\"utf-8\"><title>{e(agency)}: deliveries</title><style>{_STYLE}</style></head><body>"
            f"<h1>Deliveries from {e(agency)}</h1>"
            "<table><tr><th>delivery</th><th>extract</th><th>file</th><th>arrived (UTC)</th><th>on time?</th><th>verdict</th>"
            "<th>reason</th><th>rows read</th><th>quarantined</th></tr>" + "".join(rows) + "</table>"
            "<h2>Failures by rule over time</h2><p class=\"muted\">Rows failing each row rule per arrival day; "
            "(file) rules count rejected deliveries.</p>"
            "<table><tr><th>rule</th>" + "".join(f"<th>{e(d)}</th>" for d in days) + "</tr>" + trend + "</table></body></html>")
    _write(folder / "index.html", page)
    _write(folder / "index.json", json.dumps({"agency": agency, "deliveries": [
        {k: (str(v) if k == "arrived_at" else v) for k, v in d.items() if k in (
            "delivery_id", "extract", "file_name", "arrived_at", "status", "reason_code", "reason", "rows_read",
            "rows_valid", "rows_quarantined", "sha256")} | {"late": recorded_late(d)}
        for d in deliveries], "failures_by_rule": by_rule}, indent=2, sort_keys=True, default=str) + "\n")
    return folder / "index.html"
