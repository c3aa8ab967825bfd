from django.apps import AppConfig


class ResultsConfig(AppConfig):
    name = "evalsite.results"
    label = "results"
    verbose_name = "Results"
