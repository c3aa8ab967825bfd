from django.apps import AppConfig


class AuditsConfig(AppConfig):
    name = "raters.audits"
    label = "audits"
    verbose_name = "Expert audits"
