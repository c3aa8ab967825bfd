"""How the cost of picking the next comparison grows with a study's size (DESIGN.md budget: flat).

For each size it builds a live study of N comparisons on PostgreSQL (rows made in SQL with generate_series,
so 1M comparisons take seconds, not hours), fills part of it so the pool is realistic, then times
`assignment_claim` + `judgment_submit` for fresh raters and counts their SQL queries. It also prints the
plan of the candidate query, to show it walks the (study, is_gold, load, shuffle) index and stops early.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/evalsite_bench \
        .venv/bin/python bench/next_comparison_cost.py --sizes 1000 100000 1000000

It creates and drops its own database tables (a fresh database named in DATABASE_URL is created if missing).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evalsite.settings")
os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-0123456789abcdefghijklmnop")

from _sql import drop_studies, vacuum  # noqa: E402 - bench/ is on the path when run as a script


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 100_000, 1_000_000])
    parser.add_argument("--rounds", type=int, default=300, help="claim+submit round trips timed per size")
    args = parser.parse_args()

    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    if connection.vendor != "postgresql":
        sys.exit("Run this against PostgreSQL: set DATABASE_URL=postgres://...")
    call_command("migrate", verbosity=0)

    print(f"{'comparisons':>12} {'median ms':>10} {'p95 ms':>8} {'queries/round':>14}  plan of the candidate query")
    for size in args.sizes:
        study_id = build_study(size)
        median, p95, queries, plan = measure(study_id, args.rounds)
        print(f"{size:>12,} {median:>10.2f} {p95:>8.2f} {queries:>14}  {plan}")
        drop_study(study_id)


def build_study(n: int) -> int:
    """A live study with n comparisons (n prompts, a reference and a candidate), 30% of them full."""
    from django.db import connection

    from evalsite.studies.models import Study, System

    drop_studies("bench-next-")
    study = Study.objects.create(slug=f"bench-next-{n}", title="bench", status=Study.Status.LIVE,
                                 judgments_per_comparison=3, per_rater_cap=100_000, min_seconds_per_judgment=0)
    reference = System.objects.create(study=study, name="reference", role="reference")
    candidate = System.objects.create(study=study, name="candidate", role="candidate")
    with connection.cursor() as cursor:
        cursor.execute(
            """INSERT INTO studies_prompt (study_id, external_id, text, category, position, created_at, updated_at)
               SELECT %s, 'p' || g, 'prompt ' || g, '', g, now(), now() FROM generate_series(1, %s) g""",
            [study.pk, n])
        for system_id in (reference.pk, candidate.pk):
            cursor.execute(
                """INSERT INTO studies_response (prompt_id, system_id, text, source, model_name, sampling_params,
                       finish_reason, meta, names_model, created_at, updated_at)
                   SELECT id, %s, 'answer', 'import', '', '{}', '', '{}', '', now(), now()
                   FROM studies_prompt WHERE study_id = %s""", [system_id, study.pk])
        cursor.execute("ANALYZE studies_response")  # without statistics the pairing join below goes quadratic
        # 30% of comparisons already full (load = k), the rest spread over 0..2: a study in mid-flight.
        cursor.execute(
            """INSERT INTO studies_comparison (study_id, prompt_id, response_a_id, response_b_id, is_gold,
                   gold_expected, gold_note, judgments_done, load, shuffle, created_at)
               SELECT %s, r1.prompt_id, LEAST(r1.id, r2.id), GREATEST(r1.id, r2.id), false, '', '',
                      CASE WHEN random() < 0.3 THEN 3 ELSE floor(random() * 3)::int END AS done,
                      0, floor(random() * 2147483647)::int, now()
               FROM studies_response r1 JOIN studies_response r2
                 ON r1.prompt_id = r2.prompt_id AND r1.system_id = %s AND r2.system_id = %s""",
            [study.pk, reference.pk, candidate.pk])
        cursor.execute("UPDATE studies_comparison SET load = judgments_done WHERE study_id = %s", [study.pk])
    vacuum()
    return study.pk


def measure(study_id: int, rounds: int) -> tuple[float, float, int, str]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from evalsite.studies.models import Study
    from raters.services import _pick_sql, assignment_claim, judgment_submit, rater_consent, rater_enter

    study = Study.objects.get(pk=study_id)
    timings, query_counts = [], []
    # Each rater does 10 rounds, so the "not seen by this rater" check has something to skip.
    for i in range(rounds):
        if i % 10 == 0:
            rater = rater_consent(rater=rater_enter(study=study, provider="generic", external_id=f"bench-{i}"))
        with CaptureQueriesContext(connection) as queries:
            started = time.perf_counter()
            claim = assignment_claim(rater=rater)
            judgment_submit(rater=rater, assignment_id=claim.assignment.pk, choice="left")
            timings.append((time.perf_counter() - started) * 1000)
        query_counts.append(len(queries))
    timings.sort()
    with connection.cursor() as cursor:  # the plan of the engine's own candidate query
        cursor.execute("EXPLAIN " + _pick_sql(gold=False, vendor=connection.vendor),
                       [study_id, False, study.judgments_per_comparison, rater.pk])
        nodes = [line.strip().split("  (")[0] for (line,) in cursor.fetchall()]
        # The top of the plan and the scan that decides the cost (the joins fetch the texts by primary key).
        plan = " / ".join(node for node in nodes if "Join" not in node and "Nested Loop" != node.lstrip("-> ")
                          and ("comparison" in node or not node.startswith("->  Index Scan")))
    return statistics.median(timings), timings[int(len(timings) * 0.95)], max(query_counts), plan


def drop_study(study_id: int) -> None:
    drop_studies("bench-next-")
    vacuum()


if __name__ == "__main__":
    main()
