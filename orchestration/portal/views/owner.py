"""A data owner's pages: their agency's deliveries and failures over time, one delivery's report
with acknowledgements, and uploading a corrected file."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings as django_settings
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import render
from django.views.decorators.http import require_http_methods, require_POST

from orchestration.portal import catalogue
from orchestration.portal import permissions as perms
from orchestration.portal.data.ops import OpsSnapshot, failures_by_rule
from orchestration.portal.data.reports import delivery_report
from orchestration.portal.models import Acknowledgement, Upload
from orchestration.portal.policies import failed_rules, failure_state, may_acknowledge
from orchestration.portal.uploads import check_and_place, refresh_statuses
from orchestration.portal.views.common import data


@login_required
def agency(request, agency: str):
    perms.check_user_can_view_agency(request.user, agency)
    snap = OpsSnapshot(data())
    deliveries = snap.deliveries(agency)
    days, trend = failures_by_rule(deliveries)
    uploads = list(Upload.objects.filter(agency=agency)[:50])
    refresh_statuses(uploads, {d["sha256"]: d["delivery_id"] for d in deliveries})
    acked = set(Acknowledgement.objects.filter(agency=agency).values_list("delivery_id", "rule"))
    for d in deliveries:
        d["failed"] = failed_rules(d)
        d["open"] = [r for r in d["failed"] if (d["delivery_id"], r) not in acked]
    return render(request, "portal/owner/agency.html", {
        "agency": agency, "deliveries": deliveries, "days": days, "trend": trend, "uploads": uploads,
        "snapshot_at": snap.taken_at(), "snapshot_available": snap.available})


def _delivery(request, agency: str, delivery_id: int) -> dict:
    perms.check_user_can_view_agency(request.user, agency)
    d = OpsSnapshot(data()).delivery(agency, delivery_id)
    perms.check_user_can_view_delivery(request.user, agency, d)
    return d


def _failures(agency: str, d: dict) -> list[dict]:
    acks = Acknowledgement.objects.filter(agency=agency, delivery_id=d["delivery_id"]).select_related("user")
    by_rule: dict[str, list] = {}
    for a in acks:
        by_rule.setdefault(a.rule, []).append(a)
    return [{"rule": r, "rows": (d["rule_counts"] or {}).get(r), "acks": by_rule.get(r, []),
             "state": failure_state(bool(by_rule.get(r)))} for r in failed_rules(d)]


@login_required
def delivery(request, agency: str, delivery_id: int):
    d = _delivery(request, agency, delivery_id)
    return render(request, "portal/owner/delivery.html", {
        "agency": agency, "d": d, "report": delivery_report(data(), agency, d), "failures": _failures(agency, d)})


@login_required
@require_POST
def acknowledge(request, agency: str, delivery_id: int):
    """Acknowledge one failed rule with a comment; with htmx, only that failure's row comes back."""
    d = _delivery(request, agency, delivery_id)
    rule = request.POST.get("rule", "")
    comment = request.POST.get("comment", "").strip()
    done = Acknowledgement.objects.filter(agency=agency, delivery_id=delivery_id, rule=rule).exists()
    if not may_acknowledge(d, rule, done):
        raise Http404("no such open failure")
    error = "" if comment else "Say what was done or will be done about it."
    if not error:
        Acknowledgement.objects.create(agency=agency, delivery_id=delivery_id, rule=rule, comment=comment[:2000],
                                       user=request.user)
    failure = next(f for f in _failures(agency, d) if f["rule"] == rule)
    context = {"agency": agency, "d": d, "f": failure, "error": error}
    template = "_components/failure_row.html" if request.htmx else "portal/owner/delivery.html"
    if not request.htmx:
        context |= {"report": delivery_report(data(), agency, d), "failures": _failures(agency, d)}
    return render(request, template, context, status=400 if error else 200)


@login_required
@require_http_methods(["GET", "POST"])
def upload(request, agency: str):
    perms.check_user_can_view_agency(request.user, agency)
    contracts = catalogue.agency_contracts(agency)
    context = {"agency": agency, "contracts": contracts}
    if request.method == "POST":
        contract_id = request.POST.get("contract", "")
        perms.check_user_can_upload_for(request.user, agency, contract_id)
        f = request.FILES.get("file")
        if f is None:
            context["error"] = "Choose a file."
        elif f.size > django_settings.PORTAL_UPLOAD_MAX_BYTES:
            context["error"] = "The file is larger than the portal takes; send it by the usual route."
        else:
            record, assessment = check_and_place(data(), contracts[contract_id], f.name,
                                                 Path(f.temporary_file_path()), request.user)
            context |= {"record": record, "assessment": assessment.to_dict() if assessment else None}
    return render(request, "portal/owner/upload.html", context)
