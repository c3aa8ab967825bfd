"""Settings come from the environment; a bad value stops start-up with a message naming the variable."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from evalsite.env import env_bool, env_int, env_list, env_url

ROOT = Path(__file__).resolve().parent.parent


def load_settings(**env) -> subprocess.CompletedProcess:
    """Import the settings in a fresh interpreter with exactly these variables (plus PATH)."""
    clean = {"PATH": os.environ["PATH"], **env}
    code = ("import django; from django.conf import settings; django.setup(); "
            "print(settings.DATABASES['default']['ENGINE'], settings.CELERY_TASK_ALWAYS_EAGER, settings.DEBUG)")
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          env={**clean, "DJANGO_SETTINGS_MODULE": "evalsite.settings"}, timeout=60)


def test_embedded_default_is_sqlite_and_inline_tasks():
    out = load_settings(DEBUG="true")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["django.db.backends.sqlite3", "True", "True"]


def test_postgres_and_redis_from_urls():
    out = load_settings(SECRET_KEY="x" * 40, DATABASE_URL="postgres://u@127.0.0.1:5432/db",
                        CELERY_BROKER_URL="redis://127.0.0.1:6379/0")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["django.db.backends.postgresql", "False", "False"]


@pytest.mark.parametrize(("value", "expected"), [(None, "True 2"), ("false", "None None")])
def test_postgres_prepared_statements_on_unless_turned_off(value, expected):
    code = ("import django; from django.conf import settings; django.setup(); o = settings.DATABASES['default']"
            "['OPTIONS']; print(o.get('server_side_binding'), o.get('prepare_threshold'))")
    env = {"PATH": os.environ["PATH"], "DJANGO_SETTINGS_MODULE": "evalsite.settings", "SECRET_KEY": "x" * 40,
           "DATABASE_URL": "postgres://u@127.0.0.1:5432/db", **({"DB_PREPARED_STATEMENTS": value} if value else {})}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == expected


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "SECRET_KEY is not set and DEBUG is off"),
        ({"SECRET_KEY": "short"}, "SECRET_KEY is too short"),
        ({"DEBUG": "maybe"}, "DEBUG='maybe' is not a boolean"),
        ({"DEBUG": "1", "DATABASE_URL": "mysql://x/y"}, "DATABASE_URL must start with one of"),
        ({"DEBUG": "1", "CELERY_BROKER_URL": "amqp://guest@localhost"}, "CELERY_BROKER_URL must start with one of"),
        ({"DEBUG": "1", "IMPORT_MAX_BYTES": "ten"}, "IMPORT_MAX_BYTES='ten' is not an integer"),
        ({"DEBUG": "1", "ALLOWED_HOSTS": "a,,b"}, "ALLOWED_HOSTS='a,,b' has an empty entry"),
        ({"DEBUG": "1", "CSRF_TRUSTED_ORIGINS": "example.org"}, "CSRF_TRUSTED_ORIGINS entry 'example.org' needs a scheme"),
        ({"DEBUG": "1", "LOG_LEVEL": "LOUD"}, "LOG_LEVEL='LOUD' is not one of"),
    ],
)
def test_bad_setting_is_refused_naming_the_variable(env, message):
    out = load_settings(**env)
    assert out.returncode != 0
    assert "ImproperlyConfigured" in out.stderr and message in out.stderr


def test_env_helpers(monkeypatch):
    monkeypatch.setenv("FLAG", "Yes")
    assert env_bool("FLAG", False) is True
    monkeypatch.setenv("N", "5")
    assert env_int("N", 1, minimum=1) == 5
    with pytest.raises(ImproperlyConfigured, match="N=5 is above the maximum of 4"):
        env_int("N", 1, maximum=4)
    monkeypatch.setenv("HOSTS", " a.org , b.org ")
    assert env_list("HOSTS", []) == ["a.org", "b.org"]
    monkeypatch.delenv("MISSING", raising=False)
    assert env_url("MISSING", None, schemes=("redis",)) is None
