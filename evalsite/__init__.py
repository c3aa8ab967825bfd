"""The Django project: settings, URLs, Celery app and the researcher's side of the platform."""
from evalsite.celery import app as celery_app

__all__ = ["celery_app"]
