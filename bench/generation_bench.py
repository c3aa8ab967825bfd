"""Generation throughput through a real Celery worker (DESIGN.md budget: <= 1.25x the ideal, >= 58 in flight).

The OpenAI-compatible test server (models_serving.testserver) answers every request after 200 ms, like a
vLLM server whose batch never fills up. A study of 1,000 prompts gets a system whose endpoint allows 64
requests in flight; one job generates all of them through `celery -A evalsite worker -Q generation,default
--pool=prefork -c 2`, started by this script. Ideal: 1000 / 64 x 0.2 s = 3.125 s.

Measured: wall time from starting the job (the web page's action: create the job, enqueue on commit) to
the job being done in the database; the largest number of requests the server saw in flight at once.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/evalsite_bench \\
        .venv/bin/python bench/generation_bench.py --runs 3

Needs PostgreSQL (the database in DATABASE_URL is created if missing, then migrated) and Redis (database 13
by default: BENCH_REDIS_URL). Everything binds 127.0.0.1; the worker and the server stop when it ends.
"""
from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evalsite.settings")
os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-0123456789abcdefghijklmnop")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
# Publish to the bench's Redis database even if CELERY_BROKER_URL names another (Celery prefers the env).
os.environ["CELERY_BROKER_URL"] = REDIS_URL
os.environ["CELERY_BROKER_WRITE_URL"] = REDIS_URL

SLUG = "bench-generation"
BUDGET_RATIO = 1.25
BUDGET_IN_FLIGHT = 58


def ensure_database(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def start_worker(log_path: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "celery", "-A", "evalsite", "worker", "-Q", "generation,default",
               "--pool=prefork", "-c", "2", "--loglevel=INFO", "-n", "genbench@%h",
               "--without-gossip", "--without-mingle", "--without-heartbeat"]
    log = open(log_path, "wb")  # noqa: SIM115 - the worker writes to it until it stops
    process = subprocess.Popen(command, cwd=ROOT, env=dict(os.environ), stdout=log, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"The worker exited:\n{log_path.read_text()[-3000:]}")
        if " ready." in log_path.read_text(errors="replace"):
            return process
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)
    sys.exit(f"The worker did not become ready:\n{log_path.read_text()[-3000:]}")


def stop_worker(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def drop_bench_study() -> None:
    from _sql import drop_studies  # bench/ is on the path when run as a script

    drop_studies(SLUG)


def make_study(server_url: str, prompts: int, concurrency: int):
    from evalsite.studies.models import Prompt, Study, System
    from models_serving.models import Endpoint

    drop_bench_study()
    study = Study.objects.create(slug=SLUG, title="Generation benchmark")
    System.objects.create(study=study, name="reference", role=System.Role.REFERENCE)
    system = System.objects.create(study=study, name="candidate", role=System.Role.CANDIDATE)
    Endpoint.objects.create(system=system, base_url=server_url, model="bench-model", concurrency=concurrency,
                            params={"temperature": 0.7, "max_tokens": 256, "seed": 0})
    Prompt.objects.bulk_create([Prompt(study=study, external_id=f"p{i}", text=f"Question {i}: why is the sky blue?",
                                       position=i) for i in range(prompts)])
    return study, system


def one_run(server, prompts: int, concurrency: int) -> dict:
    from evalsite.studies.models import Response
    from models_serving import services
    from models_serving.models import GenerationJob

    server.reset()
    study, system = make_study(server.base_url, prompts, concurrency)
    started = time.perf_counter()
    job = services.generation_job_start(system=system)  # enqueued when its transaction commits
    while True:
        status = GenerationJob.objects.filter(pk=job.pk).values_list("status", flat=True).get()
        if status not in GenerationJob.ACTIVE:
            break
        if time.perf_counter() - started > 120:
            sys.exit("The job did not finish within 120 s.")
        time.sleep(0.01)
    wall = time.perf_counter() - started
    job.refresh_from_db()
    stored = Response.objects.filter(system=system).count()
    result = {"wall": wall, "status": job.status, "stored": stored, "failed": job.failed,
              "max_in_flight": server.max_in_flight, "requests": server.stats.requests,
              "worker_seconds": (job.finished_at - job.started_at).total_seconds()}
    drop_bench_study()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--delay", type=float, default=0.2, help="the test server's seconds per request")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--worker-log", type=Path, help="keep the worker's log in this file")
    args = parser.parse_args()

    database_url = os.environ.get("DATABASE_URL", "")
    if not database_url.startswith(("postgres://", "postgresql://")):
        sys.exit("Run this against PostgreSQL: set DATABASE_URL=postgres://... (the worker is another process).")
    ensure_database(database_url)

    import django

    django.setup()
    import redis
    from django.core.management import call_command

    from models_serving.testserver import OpenAITestServer

    call_command("migrate", verbosity=0)
    broker = redis.Redis.from_url(REDIS_URL)
    broker.flushdb()
    ideal = args.prompts / args.concurrency * args.delay
    waves = -(-args.prompts // args.concurrency) * args.delay
    results = []
    with tempfile.TemporaryDirectory() as tmp, OpenAITestServer(model="bench-model", delay=args.delay,
                                                                 keep_bodies=False) as server:
        worker = start_worker(args.worker_log or Path(tmp) / "worker.log")
        try:
            for run in range(1, args.runs + 1):
                result = one_run(server, args.prompts, args.concurrency)
                results.append(result)
                print(f"run {run}: {result['wall']:.3f} s wall ({result['wall'] / ideal:.2f}x ideal), worker "
                      f"{result['worker_seconds']:.3f} s, max in flight {result['max_in_flight']}, "
                      f"{result['stored']} stored, {result['failed']} failed, {result['requests']} requests, "
                      f"job {result['status']}", flush=True)
        finally:
            stop_worker(worker)
            broker.flushdb()
    wall = statistics.median(r["wall"] for r in results)
    in_flight = min(r["max_in_flight"] for r in results)
    complete = all(r["status"] == "done" and r["stored"] == args.prompts for r in results)
    ok = wall <= BUDGET_RATIO * ideal and in_flight >= BUDGET_IN_FLIGHT and complete
    print(f"{args.prompts} prompts, concurrency {args.concurrency}, {args.delay * 1000:.0f} ms per request: ideal "
          f"{ideal:.3f} s ({waves:.3f} s in whole waves of {args.concurrency}); median wall {wall:.3f} s = "
          f"{wall / ideal:.2f}x ideal (budget <= {BUDGET_RATIO}x); max in flight {in_flight} "
          f"(budget >= {BUDGET_IN_FLIGHT}); {'PASS' if ok else 'FAIL'}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
