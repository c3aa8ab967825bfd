"""The results page for a 200k-judgment study, cold (statistics computed) and warm (from the cache).

Builds the study on PostgreSQL in SQL (bench/export_bench.py's builder: a reference and 4 candidates on
10,000 prompts, each comparison judged by 5 of 2,000 raters = 200,000 judgments, 5% excluded), then
requests the page as a logged-in researcher through Django's test client (the whole view: middleware,
queries, statistics with 1,000 bootstrap rounds, SVG charts, template), and the JSON API the same way.

- cold: the cache is cleared before each request, so the judgments are read and the statistics computed;
- warm: the same request again: one version query, the systems, a cache hit and the template;
- after one new judgment: what a researcher watching a live study waits for - the version has moved, so
  the statistics are computed again, but the style features of the responses are kept.

The cold time is split into its parts (version query, reading the judgments, statistics, rendering).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/evalsite_results_bench \\
        .venv/bin/python bench/results_page_bench.py

The cache is whatever the settings say (CACHE_URL; local memory by default).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evalsite.settings")
os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-0123456789abcdefghijklmnop")


def timed(fn, *args, **kwargs):
    started = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - started, result


def render_body(study, results) -> str:
    from django.template.loader import render_to_string

    from evalsite.results.views import page_context

    return render_to_string("results/partials/results_body.html", page_context(study, results))


def add_judgment(study) -> None:
    """One more judgment as the rating engine records it: a new rater, an assignment, the judgment, and
    the comparison's counter."""
    from django.db.models import F
    from django.utils import timezone

    from evalsite.studies.models import Comparison
    from raters.models import Assignment, Judgment, Rater

    now = timezone.now()
    comparison = Comparison.objects.filter(study=study, is_gold=False).order_by("?").first()
    rater = Rater.objects.create(study=study, provider="generic", external_id=f"late-{now.timestamp()}")
    assignment = Assignment.objects.create(comparison=comparison, rater=rater, left_is_a=True, status="submitted",
                                           leased_at=now, expires_at=now, closed_at=now)
    Judgment.objects.create(assignment=assignment, comparison=comparison, rater=rater, choice="left", winner="a",
                            winner_response_id=comparison.response_a_id, server_seconds=30.0)
    Comparison.objects.filter(pk=comparison.pk).update(judgments_done=F("judgments_done") + 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--judgments", type=int, default=200_000)
    parser.add_argument("--candidates", type=int, default=4)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--reuse", action="store_true", help="keep the study if it already has this size")
    parser.add_argument("--keep", action="store_true", help="leave the study in the database afterwards")
    args = parser.parse_args()

    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth.models import Group, User
    from django.core.cache import cache
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from export_bench import build_study, existing

    from evalsite.results import selectors
    from evalsite.stats import summarize
    from evalsite.studies.models import Study

    if connection.vendor != "postgresql":
        sys.exit("Run this against PostgreSQL: set DATABASE_URL=postgres://...")
    call_command("migrate", verbosity=0)
    slug = f"bench-results-page-{args.judgments}"
    if not (args.reuse and existing(slug, args.judgments)):
        started = time.perf_counter()
        build_study(slug, judgments=args.judgments, candidates=args.candidates, k=args.k)
        print(f"build took {time.perf_counter() - started:.0f} s", flush=True)
    study = Study.objects.get(slug=slug)

    user, _ = User.objects.get_or_create(username="bench-researcher")
    user.groups.add(Group.objects.get_or_create(name=settings.RESEARCHERS_GROUP)[0])
    client = Client(HTTP_HOST="localhost")
    client.force_login(user)
    page_url, api_url = f"/studies/{slug}/results/", f"/api/v1/studies/{slug}/results/"

    def get(url: str) -> float:
        seconds, response = timed(client.get, url)
        assert response.status_code == 200, (url, response.status_code)
        return seconds

    print(f"cache: {settings.CACHES['default']['BACKEND']}; load average before: {os.getloadavg()[0]:.2f} "
          f"on {os.cpu_count()} cores", flush=True)
    get(page_url)  # imports, template compilation, first connection: not what a researcher waits for
    rows = {"page cold": [], "page warm": [], "page after one new judgment": [], "API cold": [], "API warm": []}
    parts = {"version query (every request)": [], "read judgments, style features computed": [],
             "read judgments, style features cached": [], "statistics (summarize, 1,000 rounds)": [],
             "render (page_context + template)": []}
    for _ in range(args.repeat):
        for name, url in (("page", page_url), ("API", api_url)):
            cache.clear()
            rows[f"{name} cold"].append(get(url))
            rows[f"{name} warm"].append(get(url))
        # A live study: one more judgment arrives, the next view recomputes (style features already kept).
        add_judgment(study)
        rows["page after one new judgment"].append(get(page_url))
        # The cold path piece by piece, outside the view.
        seconds, _ = timed(selectors.study_version, study=study)
        parts["version query (every request)"].append(seconds)
        cache.clear()
        seconds, data = timed(selectors.study_judgments, study=study)
        parts["read judgments, style features computed"].append(seconds)
        seconds, data = timed(selectors.study_judgments, study=study)
        parts["read judgments, style features cached"].append(seconds)
        seconds, _ = timed(summarize, data.judgments, systems=[s.name for s in data.systems],
                           reference=data.reference, categories=data.categories)
        parts["statistics (summarize, 1,000 rounds)"].append(seconds)
        results = selectors.study_results(study=study)
        seconds, _ = timed(render_body, study, results)
        parts["render (page_context + template)"].append(seconds)
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    n = data.counts
    print(f"study: {n.total:,} judgments ({n.counted:,} counted, {n.excluded:,} excluded)")
    print("| what | median | runs |")
    print("| --- | --- | --- |")
    for name, values in {**rows, **{f"cold part: {k}": v for k, v in parts.items()}}.items():
        runs = ", ".join(f"{v:.2f}" for v in values)
        print(f"| {name} | {statistics.median(values):.3f} s | {runs} |")
    if not args.keep:
        from _sql import drop_studies

        drop_studies(slug)


if __name__ == "__main__":
    main()
