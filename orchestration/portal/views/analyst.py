"""An analyst's pages, per protocol: its releases, and each release's manifest and lineage, data
dictionary, model docs of the released tables, and downloads (DuckDB, Parquet, CSV)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, StreamingHttpResponse
from django.shortcuts import render

from orchestration.portal import catalogue
from orchestration.portal import permissions as perms
from orchestration.portal.data import releases as rel
from orchestration.portal.data.models import model_docs
from orchestration.portal.views.common import data, download


def _release(request, protocol: str, date: str) -> rel.Release:
    perms.check_user_can_view_protocol(request.user, protocol)
    found = rel.release(data(), protocol, date)
    if found is None:
        raise Http404("no such release")
    return found


@login_required
def protocol(request, protocol: str):
    perms.check_user_can_view_protocol(request.user, protocol)
    return render(request, "portal/analyst/protocol.html", {
        "protocol": catalogue.protocols()[protocol], "releases": rel.releases(data(), protocol)})


@login_required
def release(request, protocol: str, date: str):
    r = _release(request, protocol, date)
    return render(request, "portal/analyst/release.html", {
        "protocol": catalogue.protocols()[protocol], "r": r, "dictionary": rel.data_dictionary(r),
        "lineage": r.manifest.get("lineage", {}).get("deliveries", [])})


@login_required
def model(request, protocol: str, date: str, table: str):
    r = _release(request, protocol, date)
    docs = model_docs(data(), catalogue.protocols()[protocol], table) if table in r.tables else None
    if docs is None:
        raise Http404("no such table")
    return render(request, "portal/analyst/model.html", {"protocol": catalogue.protocols()[protocol], "r": r,
                                                         "docs": docs})


@login_required
def file(request, protocol: str, date: str, name: str):
    r = _release(request, protocol, date)
    path = rel.release_file(r, name, also=("manifest.json",))
    if path is None:
        raise Http404("no such file")
    return download(path, name=f"{protocol}_{date}_{path.name}")


@login_required
def csv(request, protocol: str, date: str, table: str):
    r = _release(request, protocol, date)
    chunks = rel.table_csv(r, table)
    if chunks is None:
        raise Http404("no such table")
    response = StreamingHttpResponse(chunks, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{protocol}_{date}_{table}.csv"'
    response["Cache-Control"] = "private, no-store"
    return response
