"""The portal's addresses. Each object id in a path is checked by permissions.py in its view."""

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.urls import include, path

from orchestration.portal.views import analyst, board, home, ig, operator, owner

app_name = "portal"

portal = [
    path("", home.home, name="home"),
    path("sign-in/", auth_views.LoginView.as_view(template_name="portal/login.html", redirect_authenticated_user=True),
         name="login"),
    path("sign-out/", auth_views.LogoutView.as_view(), name="logout"),
    path("owner/<str:agency>/", owner.agency, name="owner_agency"),
    path("owner/<str:agency>/deliveries/<int:delivery_id>/", owner.delivery, name="owner_delivery"),
    path("owner/<str:agency>/deliveries/<int:delivery_id>/acknowledge/", owner.acknowledge, name="owner_acknowledge"),
    path("owner/<str:agency>/upload/", owner.upload, name="owner_upload"),
    path("analyst/<str:protocol>/", analyst.protocol, name="analyst_protocol"),
    path("analyst/<str:protocol>/<str:date>/", analyst.release, name="analyst_release"),
    path("analyst/<str:protocol>/<str:date>/models/<str:table>/", analyst.model, name="analyst_model"),
    path("analyst/<str:protocol>/<str:date>/files/<path:name>", analyst.file, name="analyst_download"),
    path("analyst/<str:protocol>/<str:date>/csv/<str:table>.csv", analyst.csv, name="analyst_csv"),
    path("board/<str:protocol>/", board.packs, name="board_packs"),
    path("board/<str:protocol>/<str:date>/pack.<str:kind>", board.pack, name="board_pack"),
    path("ig/", ig.home, name="ig_home"),
    path("ig/access/", ig.access, name="ig_access"),
    path("ig/access.csv", ig.access_csv, name="ig_access_csv"),
    path("ig/exclusions/", ig.exclusions, name="ig_exclusions"),
    path("ig/register/<path:name>", ig.register_file, name="ig_register_file"),
    path("operator/", operator.home, name="operator_home"),
]

urlpatterns = [path("", include((portal, "portal")))]
if settings.OIDC_ENABLED:
    urlpatterns.append(path("oidc/", include("mozilla_django_oidc.urls")))
