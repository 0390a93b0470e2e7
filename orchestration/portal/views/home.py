from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from orchestration.portal.navigation import entries


@login_required
def home(request):
    """Where each user starts: their own agencies, protocols, boards and duties, nothing else."""
    return render(request, "portal/home.html", {"entries": entries(request.user)})
