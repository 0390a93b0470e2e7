"""The WSGI application, for gunicorn: `gunicorn orchestration.portal.wsgi` (docs/portal.md)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "orchestration.portal.settings")
application = get_wsgi_application()
