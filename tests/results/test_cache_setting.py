"""CACHE_URL chooses the cache that keeps computed results: per-process memory by default, or Redis."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent


def cache_backend(**env) -> subprocess.CompletedProcess:
    clean = {"PATH": os.environ["PATH"], "DEBUG": "true", "DJANGO_SETTINGS_MODULE": "evalsite.settings", **env}
    code = ("import django; from django.conf import settings; django.setup(); "
            "c = settings.CACHES['default']; print(c['BACKEND'], c['LOCATION'])")
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, env=clean,
                          timeout=60)


def test_default_cache_is_local_memory():
    out = cache_backend()
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[0] == "django.core.cache.backends.locmem.LocMemCache"


def test_a_redis_cache_url_selects_django_redis_cache():
    out = cache_backend(CACHE_URL="redis://127.0.0.1:6379/1")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["django.core.cache.backends.redis.RedisCache", "redis://127.0.0.1:6379/1"]


@pytest.mark.parametrize("value", ["memcached://127.0.0.1:11211", "127.0.0.1:6379"])
def test_an_unsupported_cache_url_stops_start_up_naming_the_variable(value):
    out = cache_backend(CACHE_URL=value)
    assert out.returncode != 0 and "CACHE_URL must start with one of" in out.stderr
