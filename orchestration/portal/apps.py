from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "orchestration.portal"
    label = "portal"
    verbose_name = "Partnership portal"
