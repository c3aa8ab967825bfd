"""Load test of the rating loop: N simulated raters against gunicorn + PostgreSQL, then an integrity check.

Each simulated rater enters through a generic link, consents, and then loops: think, submit a choice
(the htmx request a real page sends), receive the next comparison. The time of that submit-and-next round
trip is what raters feel. When the engine says a rater is done, a fresh rater takes their place.

Think time matters: with none, 100 raters just queue behind each other and latency measures the queue,
not the server. The default (0.5 s) makes 100 raters offer ~170 judgments/s, above the 150/s budget; real
crowd raters take 20-60 s per comparison, so this is ~50x a real crowd of the same size.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/evalsite_bench \
        .venv/bin/python bench/rating_load.py --raters 100 --seconds 60

Everything binds 127.0.0.1; gunicorn is started and stopped by this script.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evalsite.settings")
os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-0123456789abcdefghijklmnop")
os.environ.setdefault("ALLOW_HTTP", "true")

from _http import Connection  # noqa: E402 - bench/ is on the path when run as a script
from _sql import drop_studies, vacuum  # noqa: E402

ASSIGNMENT = re.compile(rb'name="assignment" value="(\d+)"')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--raters", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--think", type=float, default=0.5, help="seconds a rater waits before each submit")
    parser.add_argument("--comparisons", type=int, default=10_000)
    parser.add_argument("--k", type=int, default=3)
    parser.add_argument("--workers", type=int, default=4, help="gunicorn worker processes (the Dockerfile's 4)")
    parser.add_argument("--threads", type=int, default=1, help="threads per gunicorn worker (gthread)")
    parser.add_argument("--keep-alive", type=int, default=2,
                        help="gunicorn keep-alive seconds; 0 closes each connection after its response")
    parser.add_argument("--worker-connections", type=int, default=1000,
                        help="gthread: most connections one worker holds; a low cap spreads keep-alive "
                             "connections over the workers")
    parser.add_argument("--worker-class", default="sync",
                        help="gunicorn worker class (the Dockerfile's sync); with gthread one worker can take "
                             "most keep-alive connections and become the bottleneck")
    args = parser.parse_args()

    import django

    django.setup()
    from django.db import connection

    if connection.vendor != "postgresql":
        sys.exit("Run this against PostgreSQL: set DATABASE_URL=postgres://...")
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    rater_key, study_id = build_study(args.comparisons, args.k)
    connection.close()

    port = free_port()
    server = start_gunicorn(port, args.workers, args.threads, args.worker_class, args.keep_alive,
                            args.worker_connections)
    print(f"load starts: gunicorn pid {server.pid}", flush=True)
    try:
        base = f"http://127.0.0.1:{port}"
        result = asyncio.run(run_load(base, rater_key, args.raters, args.seconds, args.think))
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    report(result, args)
    integrity(study_id, args.k, result["stored"])


def build_study(n: int, k: int) -> tuple[str, int]:
    """A live study with n comparisons (a reference and a candidate on n prompts), made in SQL for speed."""
    from django.db import connection

    from evalsite.studies.models import Study, System

    drop_studies("bench-rating-load")
    study = Study.objects.create(slug="bench-rating-load", title="bench", status=Study.Status.LIVE,
                                 judgments_per_comparison=k, per_rater_cap=50, min_seconds_per_judgment=0,
                                 instructions="Pick the better response.")
    reference = System.objects.create(study=study, name="reference", role="reference")
    candidate = System.objects.create(study=study, name="candidate", role="candidate")
    answer = "A plain answer with a few sentences of text. " * 8
    with connection.cursor() as cursor:
        cursor.execute(
            """INSERT INTO studies_prompt (study_id, external_id, text, category, position, created_at, updated_at)
               SELECT %s, 'p' || g, 'Question number ' || g || '?', '', g, now(), now()
               FROM generate_series(1, %s) g""", [study.pk, n])
        for system in (reference, candidate):
            # Every text distinct, as in a real study: the page's Markdown cache must not make this look faster.
            cursor.execute(
                """INSERT INTO studies_response (prompt_id, system_id, text, source, model_name, sampling_params,
                       finish_reason, meta, names_model, created_at, updated_at)
                   SELECT id, %s, '**' || %s || '** on question ' || position || ': ' || %s, 'import', '', '{}',
                          '', '{}', '', now(), now()
                   FROM studies_prompt WHERE study_id = %s""", [system.pk, system.name, answer, study.pk])
        cursor.execute("ANALYZE studies_response")  # without statistics the pairing join below goes quadratic
        cursor.execute(
            """INSERT INTO studies_comparison (study_id, prompt_id, response_a_id, response_b_id, is_gold,
                   gold_expected, gold_note, judgments_done, load, shuffle, created_at)
               SELECT %s, r1.prompt_id, LEAST(r1.id, r2.id), GREATEST(r1.id, r2.id), false, '', '', 0, 0,
                      floor(random() * 2147483647)::int, now()
               FROM studies_response r1 JOIN studies_response r2
                 ON r1.prompt_id = r2.prompt_id AND r1.system_id = %s AND r2.system_id = %s""",
            [study.pk, reference.pk, candidate.pk])
    vacuum()
    return study.rater_key, study.pk


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_gunicorn(port: int, workers: int, threads: int, worker_class: str, keep_alive: int,
                   worker_connections: int) -> subprocess.Popen:
    command = [sys.executable, "-m", "gunicorn", "evalsite.wsgi:application", "--bind", f"127.0.0.1:{port}",
               "--workers", str(workers), "--worker-class", worker_class, "--threads", str(threads),
               "--keep-alive", str(keep_alive),
               "--worker-connections", str(worker_connections), "--log-level", "warning", "--timeout", "60"]
    server = subprocess.Popen(command, cwd=ROOT, env={**os.environ, "DEBUG": "false"})
    for _ in range(100):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return server
        except OSError:
            time.sleep(0.1)
    server.kill()
    sys.exit("gunicorn did not start")


async def run_load(base: str, rater_key: str, raters: int, seconds: float, think: float) -> dict:
    deadline = time.monotonic() + seconds
    latencies: list[float] = []
    stored: list[int] = []  # assignment ids whose submit the server accepted
    errors: list[str] = []
    counter = iter(range(10**9))

    async def one_rater() -> None:
        http = Connection(base)  # like a browser: its own connection, kept alive while the server allows
        try:
            while time.monotonic() < deadline:
                code = f"bench-{next(counter)}-{random.randrange(10**9)}"
                try:
                    await rate_as_new_rater(http, rater_key, code, deadline, think, latencies, stored)
                except Exception as exc:  # noqa: BLE001 - every failure is counted, none stops the load
                    errors.append(f"{type(exc).__name__}: {exc}"[:200])
                    http.close()
        finally:
            http.close()

    started = time.monotonic()
    await asyncio.gather(*(one_rater() for _ in range(raters)))
    elapsed = time.monotonic() - started
    return {"latencies": latencies, "stored": stored, "errors": errors, "elapsed": elapsed}


async def rate_as_new_rater(http: Connection, rater_key, code, deadline, think, latencies, stored) -> None:
    response = await http.get(f"/r/{rater_key}/go", {"code": code})
    if response.status != 303:
        raise RuntimeError(f"entry answered {response.status}")
    welcome = urlsplit(response.headers["location"]).path.rstrip("/")
    response = await http.post(welcome + "/consent", {"consent": "yes"})
    if response.status != 303:
        raise RuntimeError(f"consent answered {response.status}")
    rate_path = welcome + "/rate"
    response = await http.get(rate_path)
    match = ASSIGNMENT.search(response.body)
    while match and time.monotonic() < deadline:
        await asyncio.sleep(random.uniform(0.5 * think, 1.5 * think))
        assignment = int(match.group(1))
        form = {"assignment": str(assignment), "choice": random.choice(["left", "right", "tie"]),
                "active_seconds": "5"}
        started = time.perf_counter()
        response = await http.post(rate_path, form, {"HX-Request": "true"})
        latencies.append(time.perf_counter() - started)
        if response.status != 200:
            raise RuntimeError(f"submit answered {response.status}")
        stored.append(assignment)
        match = ASSIGNMENT.search(response.body)  # none: the engine sent the rater to the completion page


def report(result: dict, args) -> None:
    latencies = sorted(result["latencies"])
    n = len(latencies)
    if not n:
        sys.exit(f"no judgments; errors: {result['errors'][:5]}")

    def pct(p: float) -> float:
        return latencies[min(n - 1, int(p * n))] * 1000

    print(f"raters {args.raters}, {args.seconds:.0f} s, think {args.think} s, gunicorn {args.worker_class} "
          f"{args.workers} workers x {args.threads} threads, keep-alive {args.keep_alive} s, "
          f"worker connections {args.worker_connections}, "
          f"{args.comparisons:,} comparisons, k={args.k}")
    print(f"judgments {n}  ->  {n / result['elapsed']:.1f} judgments/s")
    print(f"submit-and-next round trip: p50 {pct(0.50):.1f} ms, p95 {pct(0.95):.1f} ms, p99 {pct(0.99):.1f} ms, "
          f"mean {statistics.mean(latencies) * 1000:.1f} ms")
    print(f"errors {len(result['errors'])}" + (f": {result['errors'][:3]}" if result["errors"] else ""))


def integrity(study_id: int, k: int, stored: list[int]) -> None:
    from django.db.models import Count

    from raters.models import Judgment

    judgments = Judgment.objects.filter(comparison__study_id=study_id)
    over = (judgments.filter(excluded=False).values("comparison").annotate(n=Count("pk")).filter(n__gt=k).count())
    duplicates = (judgments.values("comparison", "rater").annotate(n=Count("pk")).filter(n__gt=1).count())
    recorded = set(judgments.values_list("assignment_id", flat=True))
    lost = len(set(stored) - recorded)
    print(f"integrity: over-assigned {over}, duplicates {duplicates}, lost {lost} "
          f"(accepted submits {len(stored)}, judgments stored {len(recorded)})")


if __name__ == "__main__":
    main()
