"""Export of 1M judgments (DESIGN.md budget: >= 100k rows/s, streamed, peak memory <= 150 MB).

Builds a study of N judgments on PostgreSQL in SQL (generate_series, as bench/rating_load.py does: the ORM
would take many minutes), then, in a fresh process so that nothing from the build counts, streams the
judgments export to /dev/null through ``evalsite.results.exports.csv_stream`` - the generator the results
page, the API and ``manage.py export`` all use - and reports rows/s and the process's peak memory.

Peak memory is the process's maximum resident set size (``resource.getrusage(RUSAGE_SELF).ru_maxrss``):
everything the process ever held, Python, Django, numpy, psycopg and the export together. The script also
prints the RSS before the export started, so the export's own share is visible.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/evalsite_results_bench \\
        .venv/bin/python bench/export_bench.py --judgments 1000000

``--reuse`` skips the build when the study is already there (same size).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evalsite.settings")
os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-0123456789abcdefghijklmnop")

SLUG_PREFIX = "bench-results-"
BUDGET_ROWS_PER_S = 100_000
BUDGET_MB = 150

ANSWER = ("## Answer\n\nHere is what the model says about the question, over a few sentences of plain prose "
          "that make the response about as long as a real one.\n\n- a first point\n- a second point\n\n"
          "**In short:** the answer. ")


def build_study(slug: str, *, judgments: int, candidates: int = 4, k: int = 5, raters: int | None = None) -> int:
    """A live study: a reference and ``candidates`` candidates on P prompts (8 categories), every candidate
    against the reference on every prompt, each comparison judged by ``k`` raters, so that P * candidates *
    k = ``judgments``. Outcomes: wins, losses, ties and both-bad in proportions that differ by candidate;
    reasons with commas, quotes and formula-like text; 5% of raters blocked (their judgments excluded)."""
    from _sql import drop_studies, vacuum
    from django.db import connection

    from evalsite.studies.models import Study, System

    prompts = judgments // (candidates * k)
    raters = raters or max(judgments // 100, k)  # each rater judges ~100 comparisons
    drop_studies(slug)
    study = Study.objects.create(slug=slug, title=f"bench {judgments:,} judgments", status=Study.Status.LIVE,
                                 scale=Study.Scale.AB_TIE_BOTHBAD, judgments_per_comparison=k)
    reference = System.objects.create(study=study, name="chatgpt", role="reference")
    systems = [System.objects.create(study=study, name=f"imitation-{i}b", role="candidate",
                                     metadata={"params_b": [7, 13, 30, 65][i % 4], "imitation_tokens_m": 50 * (i + 1)})
               for i in range(candidates)]
    with connection.cursor() as cursor:
        cursor.execute(
            """INSERT INTO studies_prompt (study_id, external_id, text, category, position, created_at, updated_at)
               SELECT %s, 'p' || g, 'Question number ' || g || '?', 'category-' || (g %% 8), g, now(), now()
               FROM generate_series(1, %s) g""", [study.pk, prompts])
        for i, system in enumerate([reference, *systems]):
            # Lengths and Markdown vary with the prompt, so the style features vary too.
            cursor.execute(
                """INSERT INTO studies_response (prompt_id, system_id, text, source, model_name, sampling_params,
                       finish_reason, meta, names_model, created_at, updated_at, completion_tokens)
                   SELECT id, %s, repeat(%s, 1 + (position + %s) %% 4), 'import', %s, '{"temperature": 0.7}',
                          'stop', '{}', '', now(), now(), 120
                   FROM studies_prompt WHERE study_id = %s""",
                [system.pk, ANSWER, i, system.name, study.pk])
        cursor.execute("ANALYZE studies_response")
        cursor.execute(
            """INSERT INTO studies_comparison (study_id, prompt_id, response_a_id, response_b_id, is_gold,
                   gold_expected, gold_note, judgments_done, load, shuffle, created_at)
               SELECT %s, r.prompt_id, LEAST(r.id, c.id), GREATEST(r.id, c.id), false, '', '', %s, %s,
                      floor(random() * 2147483647)::int, now()
               FROM studies_response r JOIN studies_response c ON c.prompt_id = r.prompt_id
               WHERE r.system_id = %s AND c.system_id = ANY(%s)""",
            [study.pk, k, k, reference.pk, [s.pk for s in systems]])
        cursor.execute(
            """INSERT INTO raters_rater (study_id, provider, external_id, pseudonym, token, status, status_reason,
                   provider_data, consented_at, judgments_count, gold_answered, gold_correct, first_seen_at,
                   last_seen_at)
               SELECT %s, 'prolific', 'worker-' || g, 'r-' || %s || '-' || lpad(g::text, 7, '0'),
                      'bench-' || %s || '-' || g,
                      CASE WHEN g %% 20 = 0 THEN 'blocked' ELSE 'active' END,
                      CASE WHEN g %% 20 = 0 THEN 'blocked by a researcher' ELSE '' END,
                      '{}', now(), 0, 0, 0, now(), now()
               FROM generate_series(1, %s) g""", [study.pk, study.pk, study.pk, raters])
        # Rater (n * k + t) mod R judges comparison n: k different raters per comparison.
        cursor.execute(
            """INSERT INTO raters_assignment (comparison_id, rater_id, left_is_a, is_gold, status, leased_at,
                   expires_at, closed_at)
               SELECT c.id, r.id, (c.n + t) %% 2 = 0, false, 'submitted', now() - interval '1 hour',
                      now() - interval '50 minutes', now() - interval '59 minutes'
               FROM (SELECT id, row_number() OVER (ORDER BY id) - 1 AS n FROM studies_comparison
                     WHERE study_id = %s) c
               CROSS JOIN generate_series(0, %s - 1) t
               JOIN (SELECT id, row_number() OVER (ORDER BY id) - 1 AS n FROM raters_rater WHERE study_id = %s) r
                 ON r.n = (c.n * %s + t) %% %s""",
            [study.pk, k, study.pk, k, raters])
        cursor.execute("ANALYZE raters_assignment")
        cursor.execute(
            """INSERT INTO raters_judgment (assignment_id, comparison_id, rater_id, choice, winner,
                   winner_response_id, strength, reason, server_seconds, active_seconds, is_gold, gold_passed,
                   too_fast, excluded, excluded_reason, created_at)
               SELECT x.id, x.comparison_id, x.rater_id,
                      CASE WHEN x.winner = 'tie' THEN CASE WHEN x.u2 < 0.2 THEN 'both_bad' ELSE 'tie' END
                           WHEN (x.winner = 'a') = x.left_is_a THEN 'left' ELSE 'right' END,
                      x.winner,
                      CASE x.winner WHEN 'a' THEN x.response_a_id WHEN 'b' THEN x.response_b_id END,
                      '',
                      CASE (x.u2 * 5)::int WHEN 0 THEN '' WHEN 1 THEN 'clearer, and shorter'
                           WHEN 2 THEN 'He said "no", then left' WHEN 3 THEN '=SUM(A1:A2) looks like a formula'
                           ELSE 'more accurate' END,
                      5 + x.u * 60, 4 + x.u * 50, false, NULL, false,
                      x.blocked, CASE WHEN x.blocked THEN 'blocked by a researcher' ELSE '' END,
                      now() - x.u2 * interval '7 days'
               FROM (SELECT y.*, CASE WHEN y.roll < 0.30 + 0.05 * y.quality + 0.2 * (y.easy - 0.5) THEN y.cand
                                      WHEN y.roll < 0.75 THEN y.ref ELSE 'tie' END AS winner
                     FROM (SELECT a.id, a.comparison_id, a.rater_id, a.left_is_a, c.response_a_id, c.response_b_id,
                                  r.status = 'blocked' AS blocked, random() AS u, random() AS u2,
                                  random() AS roll,  -- drawn per judgment: raters of one comparison disagree
                                  -- how much the comparison favours the candidate, shared by its raters
                                  ((c.id * 7919) %% 100) / 100.0 AS easy,
                                  CASE WHEN ra.system_id = %s THEN 'b' ELSE 'a' END AS cand,
                                  CASE WHEN ra.system_id = %s THEN 'a' ELSE 'b' END AS ref,
                                  -- candidates differ a little in quality
                                  (ra.system_id + rb.system_id - %s) %% 4 AS quality
                           FROM raters_assignment a
                           JOIN studies_comparison c ON c.id = a.comparison_id
                           JOIN raters_rater r ON r.id = a.rater_id
                           JOIN studies_response ra ON ra.id = c.response_a_id
                           JOIN studies_response rb ON rb.id = c.response_b_id
                           WHERE c.study_id = %s) y) x""",
            [reference.pk, reference.pk, reference.pk, study.pk])
        cursor.execute("SELECT count(*) FROM raters_judgment j JOIN studies_comparison c ON c.id = j.comparison_id "
                       "WHERE c.study_id = %s", [study.pk])
        (made,) = cursor.fetchone()
    vacuum()
    print(f"built {slug}: {prompts:,} prompts, {candidates + 1} systems, {raters:,} raters, {made:,} judgments",
          flush=True)
    return study.pk


def existing(slug: str, judgments: int) -> bool:
    from raters.models import Judgment

    return Judgment.objects.filter(comparison__study__slug=slug).count() == judgments


def rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def current_rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def measure(slug: str, what: str, web_worker: bool = False) -> dict:
    """Stream one export to /dev/null; runs in its own process (see main). ``web_worker`` first imports
    what a gunicorn worker has loaded once it served a results page (the statistics, hence scipy)."""
    import django

    django.setup()
    if web_worker:
        import evalsite.results.views  # noqa: F401
        import evalsite.stats  # noqa: F401
    from evalsite.results import exports
    from evalsite.studies.models import Study

    study = Study.objects.get(slug=slug)
    export = exports.get_export(what)
    baseline_peak, baseline_now = rss_mb(), current_rss_mb()
    rows = [0]

    def count(n: int) -> None:
        rows[0] += n

    started = time.perf_counter()
    size = 0
    with open(os.devnull, "wb") as sink:
        for chunk in exports.csv_stream(export, study, on_rows=count):
            sink.write(chunk)
            size += len(chunk)
    seconds = time.perf_counter() - started
    return {"rows": rows[0], "bytes": size, "seconds": seconds, "rows_per_s": rows[0] / seconds,
            "rss_before_mb": baseline_now, "peak_before_mb": baseline_peak, "peak_rss_mb": rss_mb()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--judgments", type=int, default=1_000_000)
    parser.add_argument("--what", default="judgments", help="which export to stream")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--reuse", action="store_true", help="keep the study if it already has this size")
    parser.add_argument("--keep", action="store_true", help="leave the study in the database afterwards")
    parser.add_argument("--web-worker", action="store_true",
                        help="measure in a process that has also loaded the statistics (scipy), as a web worker has")
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # internal: the child process
    args = parser.parse_args()
    slug = f"{SLUG_PREFIX}export-{args.judgments}"

    if args.measure:
        print(json.dumps(measure(args.measure, args.what, args.web_worker)))
        return

    import django

    django.setup()
    from django.db import connection

    if connection.vendor != "postgresql":
        sys.exit("Run this against PostgreSQL: set DATABASE_URL=postgres://...")
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    if not (args.reuse and existing(slug, args.judgments)):
        started = time.perf_counter()
        build_study(slug, judgments=args.judgments)
        print(f"build took {time.perf_counter() - started:.0f} s", flush=True)
    connection.close()

    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores", flush=True)
    runs = []
    for i in range(args.repeat):
        out = subprocess.run([sys.executable, __file__, "--measure", slug, "--what", args.what,
                              *(["--web-worker"] if args.web_worker else [])],
                             capture_output=True, text=True, check=True, env=os.environ)
        run = json.loads(out.stdout.strip().splitlines()[-1])
        runs.append(run)
        print(f"run {i + 1}: {run['rows']:,} rows, {run['bytes'] / 1e6:.0f} MB of CSV in {run['seconds']:.2f} s = "
              f"{run['rows_per_s']:,.0f} rows/s; max RSS {run['peak_rss_mb']:.0f} MB "
              f"(RSS before the export {run['rss_before_mb']:.0f} MB)", flush=True)
    best = sorted(runs, key=lambda r: r["rows_per_s"])[len(runs) // 2]
    peak = max(r["peak_rss_mb"] for r in runs)
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    print(f"median: {best['rows_per_s']:,.0f} rows/s (budget >= {BUDGET_ROWS_PER_S:,}); "
          f"max RSS over runs {peak:.0f} MB (budget <= {BUDGET_MB} MB)")
    if not args.keep:
        from _sql import drop_studies

        drop_studies(slug)
    ok = best["rows_per_s"] >= BUDGET_ROWS_PER_S and peak <= BUDGET_MB
    print("within budget" if ok else "OVER BUDGET")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
