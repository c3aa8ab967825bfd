from django.apps import AppConfig


class StudiesConfig(AppConfig):
    name = "evalsite.studies"
    label = "studies"
    verbose_name = "Studies"
