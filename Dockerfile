# syntax=docker/dockerfile:1
# One image for the web server, the Celery worker and beat, and the one-shot migrate (see docker-compose.yml).
# vLLM runs in its own image (vllm/vllm-openai) on a GPU host; this image has no GPU dependencies.
FROM python:3.11-slim

# PYTHONPATH: settings find templates/ and static/ next to the code (BASE_DIR), so the code runs from /app
# rather than from the installed copy in site-packages.
# WEB_CONCURRENCY: gunicorn's worker count; 4 suits a 2-core host (BENCHMARKS.md), override per deployment.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONPATH=/app \
    WEB_CONCURRENCY=4

WORKDIR /app

# Dependencies first, in their own layer, so editing the code does not reinstall numpy and scipy.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

COPY . .
# The throwaway key only lets settings load for collectstatic; the real one comes from the environment.
RUN pip install --no-deps . \
    && rm -rf build ./*.egg-info \
    && SECRET_KEY=collectstatic-at-build-time-only-not-a-real-secret DEBUG=false \
        python manage.py collectstatic --noinput \
    && useradd --create-home --uid 10001 --user-group app

USER app
EXPOSE 8000

# /healthz answers 200 once the database does. ALLOWED_HOSTS may name only the public host, so the check
# sends the first allowed host as its Host header.
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as u; h = (os.environ.get('ALLOWED_HOSTS') or 'localhost').split(',')[0].strip().lstrip('.'); h = 'localhost' if h in ('', '*') else h; u.urlopen(u.Request('http://127.0.0.1:8000/healthz', headers={'Host': h}), timeout=8)"]

# Sync workers: a free worker takes the next connection, so the load spreads evenly. gthread workers keep
# their keep-alive connections, and in the rating-loop benchmark one of them ended up serving most raters
# (103-114 judgments/s against 158-165 with sync workers). Sync workers want a proxy in front to absorb slow
# clients; a public deployment has one anyway for TLS (compose binds to 127.0.0.1 by default).
CMD ["gunicorn", "evalsite.wsgi:application", \
     "--bind", "0.0.0.0:8000", \
     "--worker-class", "sync", \
     "--worker-tmp-dir", "/dev/shm", \
     "--timeout", "60", "--graceful-timeout", "30", \
     "--access-logfile", "-"]
