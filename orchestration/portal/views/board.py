"""A board member's pages: that board's packs, latest first, with the archive."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import render

from orchestration.portal import catalogue
from orchestration.portal import permissions as perms
from orchestration.portal.data import releases as rel
from orchestration.portal.views.common import data, document


@login_required
def packs(request, protocol: str):
    perms.check_user_can_view_board(request.user, protocol)
    found = [r for r in rel.releases(data(), protocol) if r.has_board_pack()]
    return render(request, "portal/board/packs.html", {
        "protocol": catalogue.protocols()[protocol], "latest": found[0] if found else None, "archive": found[1:]})


@login_required
def pack(request, protocol: str, date: str, kind: str):
    perms.check_user_can_view_board(request.user, protocol)
    r = rel.release(data(), protocol, date)
    name = rel.BOARD_PACK.get(kind)
    path = rel.release_file(r, name, also=(name,)) if r is not None and name else None
    if path is None:
        raise Http404("no such board pack")
    return document(path)
