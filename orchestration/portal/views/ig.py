"""The IG lead's pages: the release log with its verification, the access log and its export, the
opt-out and consent exclusions per protocol, and the agreement register when one is written."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from orchestration.portal import permissions as perms
from orchestration.portal.access import export_csv
from orchestration.portal.data.ops import OpsSnapshot
from orchestration.portal.models import AccessEvent
from orchestration.portal.navigation import register_index
from orchestration.portal.views.common import data, document


@login_required
def home(request):
    perms.check_user_is_ig_lead(request.user)
    snap = OpsSnapshot(data())
    return render(request, "portal/ig/release_log.html", {
        "log": snap.release_log(), "verification": snap.verification(), "snapshot_available": snap.available})


def _events(request):
    events = AccessEvent.objects.all()
    who = request.GET.get("user", "").strip()
    if who:
        events = events.filter(username=who)
    return events, who


@login_required
def access(request):
    perms.check_user_is_ig_lead(request.user)
    events, who = _events(request)
    page = Paginator(events, 100).get_page(request.GET.get("page"))
    template = "_components/access_table.html" if request.htmx else "portal/ig/access.html"
    return render(request, template, {"page": page, "who": who})


@login_required
def access_csv(request):
    perms.check_user_is_ig_lead(request.user)
    events, who = _events(request)
    response = HttpResponse(export_csv(events.iterator()), content_type="text/csv; charset=utf-8")
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    response["Content-Disposition"] = f'attachment; filename="portal_access_log_{stamp}.csv"'
    response["Cache-Control"] = "private, no-store"
    return response


@login_required
def exclusions(request):
    perms.check_user_is_ig_lead(request.user)
    return render(request, "portal/ig/exclusions.html", {"rows": OpsSnapshot(data()).exclusions()})


@login_required
def register_file(request, name: str):
    """A page of the agreement register, as `partnership register` wrote it."""
    perms.check_user_is_ig_lead(request.user)
    index = register_index()
    path = (index.parent / name).resolve() if index else None
    if path is None or not path.is_relative_to(index.parent.resolve()) or not path.is_file() \
            or path.suffix not in (".html", ".pdf"):
        raise Http404("no such page")
    return document(path)
