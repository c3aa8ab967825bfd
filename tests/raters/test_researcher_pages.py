"""The researcher's rater pages: progress, the raters table, block/unblock, entry links; admin; the reclaim task."""
from __future__ import annotations

import html as htmllib
import re
import subprocess
import sys
from collections import Counter
from datetime import timedelta

import pytest
from celery import current_app
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from evalsite.studies.models import Comparison, Response, Study
from evalsite.studies.services import comparison_mark_gold
from raters.models import Assignment, Judgment, Rater
from raters.services import (
    assignment_claim,
    judgment_submit,
    rater_block,
    rater_unblock,
    reclaim_expired_leases,
)
from raters.tasks import BEAT_SCHEDULE, RECLAIM_INTERVAL_SECONDS, reclaim_expired_leases_task
from tests.factories import UserFactory
from tests.raters.conftest import make_live_study, make_rater

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}


def text(response) -> str:
    return htmllib.unescape(response.content.decode())


def url(name: str, study: Study, *args) -> str:
    return reverse(f"rater_admin:{name}", args=[study.slug, *args])


def rate(rater: Rater, n: int, choice: str = "left") -> None:
    for _ in range(n):
        claim = assignment_claim(rater=rater)
        judgment_submit(rater=rater, assignment_id=claim.assignment.pk, choice=choice)


def counted_per_comparison(study: Study) -> Counter:
    """Independent of the page: judgments that count per non-gold comparison, zeros included."""
    counts = Counter({pk: 0 for pk in Comparison.objects.filter(study=study, is_gold=False).values_list("pk", flat=True)})
    counts.update(Judgment.objects.filter(comparison__study=study, comparison__is_gold=False, excluded=False)
                  .values_list("comparison_id", flat=True))
    return counts


# --- permissions ----------------------------------------------------------------------------------------

@pytest.fixture
def live_study(db):
    return make_live_study(n_prompts=5, judgments_per_comparison=2, min_seconds_per_judgment=0)


def page_urls(study: Study) -> list[str]:
    return [url("progress", study), url("list", study), url("links", study)]


def test_anonymous_visitors_are_sent_to_the_login_page(client, live_study):
    rater = make_rater(live_study, "w1")
    for address in page_urls(live_study):
        response = client.get(address)
        assert response.status_code == 302 and response["Location"].startswith(reverse("login")), address
    for action in ("block", "unblock"):
        response = client.post(url(action, live_study, rater.pk))
        assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_logged_in_non_researchers_get_403_and_cannot_block(client, outsider, live_study):
    rater = make_rater(live_study, "w1")
    client.force_login(outsider)
    for address in page_urls(live_study):
        assert client.get(address).status_code == 403, address
    assert client.post(url("block", live_study, rater.pk)).status_code == 403
    rater.refresh_from_db()
    assert rater.status == Rater.Status.ACTIVE


def test_staff_who_are_not_in_the_group_may_open_the_pages(client, live_study):
    client.force_login(UserFactory(username="staffer", is_staff=True))
    assert all(client.get(address).status_code == 200 for address in page_urls(live_study))


def test_pages_of_an_unknown_study_are_404(researcher_client):
    assert researcher_client.get("/studies/nope/raters/").status_code == 404


# --- progress -------------------------------------------------------------------------------------------

def assert_coverage_is_the_direct_count(progress, study: Study) -> None:
    """The page reads the engine's counters; the truth is the judgments themselves."""
    direct = Counter(counted_per_comparison(study).values())
    assert {b.judgments: b.comparisons for b in progress.coverage if b.comparisons} == dict(direct)
    assert progress.judgments_counted == sum(n * c for n, c in direct.items())


def test_progress_counts_judgments_that_count_leases_gold_and_exclusions(researcher_client):
    study = make_live_study(n_prompts=5, judgments_per_comparison=2, min_seconds_per_judgment=0)
    comparison_mark_gold(comparison=study.comparisons.order_by("pk").last(), expected="a")  # 4 non-gold left
    first, second, third = (make_rater(study, f"w{i}") for i in range(3))
    rate(first, 3)
    rate(second, 3)  # breadth-first: the 4th comparison, then two that first rated
    assignment_claim(rater=third)  # an open lease
    progress = researcher_client.get(url("progress", study)).context["progress"]

    assert (progress.k, progress.comparisons, progress.gold_comparisons) == (2, 4, 1)
    assert (progress.judgments_counted, progress.judgments_needed, progress.complete_comparisons) == (6, 8, 2)
    assert [(b.judgments, b.comparisons) for b in progress.coverage] == [(0, 0), (1, 2), (2, 2)]
    assert (progress.open_leases, progress.lapsed_leases, progress.excluded) == (1, 0, 0)
    assert_coverage_is_the_direct_count(progress, study)

    rater_block(rater=first, reason="random clicking")
    progress = researcher_client.get(url("progress", study)).context["progress"]
    assert progress.judgments_counted == 3 and progress.excluded == 3
    assert [(r.reason, r.judgments, r.raters) for r in progress.exclusion_reasons] == [("random clicking", 3, 1)]
    assert_coverage_is_the_direct_count(progress, study)
    assert [(status, n) for status, _, n in progress.raters_by_status] == [("active", 2), ("screened_out", 0),
                                                                          ("blocked", 1)]

    rate(third, 1)  # submits the open lease
    rater_unblock(rater=first)
    progress = researcher_client.get(url("progress", study)).context["progress"]
    assert progress.excluded + progress.judgments_counted == 7 and progress.open_leases == 0
    assert_coverage_is_the_direct_count(progress, study)


def test_progress_coverage_leaves_out_open_and_lapsed_leases(researcher_client):
    study = make_live_study(n_prompts=3, judgments_per_comparison=2, lease_ttl_seconds=60, min_seconds_per_judgment=0)
    for i in range(3):
        rate(make_rater(study, f"done-{i}"), 1)
    assignment_claim(rater=make_rater(study, "here"))
    assignment_claim(rater=make_rater(study, "gone"), now=timezone.now() - timedelta(minutes=5))
    progress = researcher_client.get(url("progress", study)).context["progress"]
    assert (progress.judgments_counted, progress.open_leases, progress.lapsed_leases) == (3, 1, 1)
    assert_coverage_is_the_direct_count(progress, study)
    reclaim_expired_leases()
    assert_coverage_is_the_direct_count(researcher_client.get(url("progress", study)).context["progress"], study)


def test_progress_counts_gold_answers_of_every_rater(researcher_client, rated_study):
    progress = researcher_client.get(url("progress", rated_study)).context["progress"]
    assert (progress.gold_comparisons, progress.gold_judgments, progress.gold_passed) == (2, 2, 1)


def test_progress_page_renders_the_numbers_and_polls_while_live(researcher_client, live_study):
    rate(make_rater(live_study, "w1"), 2)
    response = researcher_client.get(url("progress", live_study))
    page = text(response)
    assert response.status_code == 200 and "<html" in page
    assert re.search(r"2 <small>/ 10</small>", page)
    assert 'hx-trigger="every 5s"' in page and f'hx-get="{url("progress", live_study)}"' in page
    assert f'href="{url("progress", live_study)}"' in page  # the no-JavaScript refresh


def test_progress_partial_for_htmx_and_no_polling_once_the_study_is_not_live(researcher_client, live_study):
    partial = researcher_client.get(url("progress", live_study), headers=HTMX)
    assert "<html" not in text(partial) and 'id="rater-progress"' in text(partial)
    assert "HX-Request" in partial["Vary"]
    Study.objects.filter(pk=live_study.pk).update(status=Study.Status.PAUSED)
    assert "every 5s" not in text(researcher_client.get(url("progress", live_study)))


def test_responses_that_name_a_model_are_listed_with_prompt_system_and_phrase(researcher_client, live_study):
    flagged = Response.objects.filter(prompt__study=live_study, system__name="candidate-1").order_by("pk").first()
    Response.objects.filter(pk=flagged.pk).update(names_model="As an AI developed by OpenAI")
    progress_page = researcher_client.get(url("progress", live_study))
    assert list(progress_page.context["flagged"]) == [flagged]
    page = text(progress_page)
    assert "As an AI developed by OpenAI" in page
    assert f"<code>{flagged.prompt.external_id}</code></td><td>candidate-1</td>" in page
    # The self-refreshing panel leaves them out: they change on import, not while raters rate.
    assert "As an AI developed by OpenAI" not in text(researcher_client.get(url("progress", live_study), headers=HTMX))


# --- raters table ---------------------------------------------------------------------------------------

@pytest.fixture
def rated_study(db):
    """One rater with known numbers: gold 1/2, A/B choices 3 left 1 right, two too fast, median 12 s."""
    study = make_live_study(n_prompts=8, judgments_per_comparison=3, min_seconds_per_judgment=5, gold_rate=1.0)
    golds = list(study.comparisons.order_by("pk")[:2])
    comparison_mark_gold(comparison=golds[0], expected="tie")
    comparison_mark_gold(comparison=golds[1], expected="a")
    rater = make_rater(study, "busy")
    start = timezone.now() - timedelta(hours=1)
    # (choice, server seconds, active seconds); gold is served first at gold rate 1, answered "tie" twice.
    plan = [("tie", 30, None), ("tie", 40, None),
            ("left", 2, None), ("left", 3, None), ("left", 10, None), ("right", 50, 12.0), ("tie", 20, None)]
    for i, (choice, seconds, active) in enumerate(plan):
        leased = start + timedelta(minutes=i)
        claim = assignment_claim(rater=rater, now=leased)
        assert claim.assignment.is_gold == (i < 2)
        judgment_submit(rater=rater, assignment_id=claim.assignment.pk, choice=choice, active_seconds=active,
                        now=leased + timedelta(seconds=seconds))
    make_rater(study, "idle")
    return study


def test_raters_table_shows_gold_accuracy_left_share_median_and_too_fast(researcher_client, rated_study):
    response = researcher_client.get(url("list", rated_study))
    rows = {r.external_id: r for r in response.context["page"].object_list}
    busy, idle = rows["busy"], rows["idle"]
    assert (busy.n_judgments, busy.gold_correct, busy.gold_answered) == (7, 1, 2)
    assert (busy.n_left, busy.n_right, busy.left_share) == (3, 1, 0.75)
    assert busy.median_seconds == 12.0  # 2, 3, 10, 12 (active time of the 50 s one), 20, 30, 40
    assert busy.n_too_fast == 2
    assert (idle.n_judgments, idle.gold_accuracy_value, idle.left_share, idle.median_seconds) == (0, None, None, None)
    page = text(response)
    assert "1/2 (50%)" in page and "75% <span class=\"muted\">(3/4)</span>" in page and "12.0" in page
    assert busy.pseudonym in page and "busy" not in page  # pseudonyms, not the provider's worker ids


@pytest.mark.parametrize("sort, first", [("-judgments", "busy"), ("judgments", "idle"), ("gold", "busy"),
                                         ("-gold", "busy"), ("-too_fast", "busy"), ("left", "busy")])
def test_raters_table_sorts_by_column_with_missing_values_last(researcher_client, rated_study, sort, first):
    rows = researcher_client.get(url("list", rated_study), {"sort": sort}).context["page"].object_list
    assert rows[0].external_id == first


def test_sort_headings_toggle_the_current_column_and_keep_the_status_filter(researcher_client, rated_study):
    page = text(researcher_client.get(url("list", rated_study), {"sort": "-judgments", "status": "active"}))
    assert '<a href="{}?sort=judgments&status=active"'.format(url("list", rated_study)) in page  # toggled
    assert '<a href="{}?sort=pseudonym&status=active"'.format(url("list", rated_study)) in page  # A to Z first
    assert '<a href="{}?sort=-gold&status=active"'.format(url("list", rated_study)) in page  # best first
    assert 'aria-sort="descending"' in page and page.count('aria-sort="none"') == 8


def test_raters_table_ignores_an_unknown_sort_and_filters_by_status(researcher_client, rated_study):
    assert researcher_client.get(url("list", rated_study), {"sort": "password"}).status_code == 200
    rater_block(rater=Rater.objects.get(external_id="idle"))
    rows = researcher_client.get(url("list", rated_study), {"status": "blocked"}).context["page"].object_list
    assert [r.external_id for r in rows] == ["idle"]


def test_raters_table_paginates_at_100(researcher_client, live_study):
    Rater.objects.bulk_create([Rater(study=live_study, provider="generic", external_id=f"code-{i}",
                                     pseudonym=f"r-{i:010d}", token=f"t-{i}") for i in range(101)])
    first = researcher_client.get(url("list", live_study)).context["page"]
    second = researcher_client.get(url("list", live_study), {"page": 2}).context["page"]
    assert (len(first.object_list), len(second.object_list)) == (100, 1)


def test_raters_table_query_count_does_not_grow_with_the_raters(researcher_client):
    study = make_live_study(n_prompts=20, judgments_per_comparison=3, min_seconds_per_judgment=0)

    def queries_for_table() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert researcher_client.get(url("list", study)).status_code == 200
        return len(captured.captured_queries)

    for i in range(5):
        rate(make_rater(study, f"few-{i}"), 1)
    with_five = queries_for_table()
    for i in range(45):
        rate(make_rater(study, f"many-{i}"), 1)
    assert Rater.objects.filter(study=study).count() == 50
    assert queries_for_table() == with_five


# --- block and unblock ----------------------------------------------------------------------------------

def test_block_then_unblock_through_the_page_flags_and_restores_judgments(researcher_client, live_study):
    rater = make_rater(live_study, "w1")
    rate(rater, 3)
    response = researcher_client.post(url("block", live_study, rater.pk),
                                      {"reason": "always picks left", "sort": "-judgments", "page": "1"})
    assert response.status_code == 302
    assert response["Location"] == url("list", live_study) + "?sort=-judgments&page=1"
    rater.refresh_from_db()
    assert (rater.status, rater.status_reason) == (Rater.Status.BLOCKED, "always picks left")
    assert set(rater.judgments.values_list("excluded", "excluded_reason")) == {(True, "always picks left")}
    assert set(Comparison.objects.filter(judgments__rater=rater).values_list("load", flat=True)) == {0}
    assert "blocked. Their judgments are kept" in text(researcher_client.get(response["Location"]))

    response = researcher_client.post(url("unblock", live_study, rater.pk))
    assert response.status_code == 302
    rater.refresh_from_db()
    assert (rater.status, rater.status_reason) == (Rater.Status.ACTIVE, "")
    assert set(rater.judgments.values_list("excluded", flat=True)) == {False}
    assert set(Comparison.objects.filter(judgments__rater=rater).values_list("load", flat=True)) == {1}


def test_block_without_a_reason_uses_a_default_one(researcher_client, live_study):
    rater = make_rater(live_study, "w1")
    researcher_client.post(url("block", live_study, rater.pk))
    rater.refresh_from_db()
    assert rater.status == Rater.Status.BLOCKED and rater.status_reason


def test_block_with_htmx_swaps_the_row_which_then_offers_unblock(researcher_client, live_study):
    rater = make_rater(live_study, "w1")
    rate(rater, 1)
    response = researcher_client.post(url("block", live_study, rater.pk), {"reason": "bot"}, headers=HTMX)
    row = text(response)
    assert response.status_code == 200 and row.lstrip().startswith(f'<tr id="rater-{rater.pk}">')
    assert "Unblock" in row and "Block…" not in row and "bot" in row and "blocked." in row
    assert url("unblock", live_study, rater.pk) in row


def test_a_too_long_block_reason_is_refused_and_changes_nothing(researcher_client, live_study):
    rater = make_rater(live_study, "w1")
    response = researcher_client.post(url("block", live_study, rater.pk), {"reason": "x" * 301}, follow=True)
    assert "not blocked: " in text(response)
    rater.refresh_from_db()
    assert rater.status == Rater.Status.ACTIVE


def test_a_screened_out_rater_cannot_be_blocked_so_unblock_cannot_revive_them(researcher_client, live_study):
    rater = make_rater(live_study, "w1")
    Rater.objects.filter(pk=rater.pk).update(status=Rater.Status.SCREENED_OUT, status_reason="gold 0/3")
    response = researcher_client.post(url("block", live_study, rater.pk), {"reason": "also bad"}, follow=True)
    assert "already screened out" in text(response)
    researcher_client.post(url("unblock", live_study, rater.pk))
    rater.refresh_from_db()
    assert (rater.status, rater.status_reason) == (Rater.Status.SCREENED_OUT, "gold 0/3")


def test_unblocking_a_rater_who_is_not_blocked_changes_nothing(researcher_client, live_study):
    rater = make_rater(live_study, "w1")
    response = researcher_client.post(url("unblock", live_study, rater.pk), follow=True)
    assert "not blocked (active); nothing changed" in text(response)
    rater.refresh_from_db()
    assert rater.status == Rater.Status.ACTIVE


def test_block_needs_post_and_a_rater_of_this_study(researcher_client, live_study):
    other_study_rater = make_rater(make_live_study(n_prompts=1), "elsewhere")
    assert researcher_client.get(url("block", live_study, other_study_rater.pk)).status_code == 405
    assert researcher_client.post(url("block", live_study, other_study_rater.pk)).status_code == 404
    other_study_rater.refresh_from_db()
    assert other_study_rater.status == Rater.Status.ACTIVE


# --- entry links page -----------------------------------------------------------------------------------

def test_links_page_shows_every_provider_link_ready_to_paste(researcher_client, live_study, settings):
    settings.PUBLIC_BASE_URL = "https://eval.example.org"
    response = researcher_client.get(url("links", live_study))
    page = text(response)
    base = f"https://eval.example.org/r/{live_study.rater_key}"
    assert f"{base}/prolific?PROLIFIC_PID={{{{%PROLIFIC_PID%}}}}&STUDY_ID={{{{%STUDY_ID%}}}}" in page
    assert f'value="{base}/mturk" readonly data-copy' in page
    assert "<ExternalURL>" in page and live_study.completion_code in page
    assert live_study.slug not in re.findall(r'value="([^"]*)"', page)[0]
    assert "raters/researcher.js" in page and "<script>" not in page  # no inline script
    assert response["Cache-Control"] == "no-store"


def test_links_page_makes_a_fresh_generic_code_each_time(researcher_client, live_study):
    def generic() -> str:
        return re.search(r'id="url-generic" value="([^"]+)"', text(researcher_client.get(url("links", live_study)))).group(1)

    assert generic() != generic()


def test_links_page_can_make_many_generic_links_at_once(researcher_client, live_study):
    response = researcher_client.get(url("links", live_study), {"count": "25"})
    many = re.search(r'<textarea id="generic-many"[^>]*>(.*?)</textarea>', text(response), re.S).group(1).split()
    assert len(many) == len(set(many)) == 25 and all("/go?code=" in link for link in many)
    assert len(researcher_client.get(url("links", live_study), {"count": "99999"}).context["generic_links"]) == 200


def test_links_page_warns_when_links_point_at_this_machine(researcher_client, live_study, settings):
    settings.PUBLIC_BASE_URL = "http://127.0.0.1:8000"
    assert "PUBLIC_BASE_URL" in text(researcher_client.get(url("links", live_study)))
    settings.PUBLIC_BASE_URL = "https://eval.example.org"
    assert "PUBLIC_BASE_URL" not in text(researcher_client.get(url("links", live_study)))


# --- admin ----------------------------------------------------------------------------------------------

@pytest.fixture
def admin_client_logged(client):
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    return client


def test_admin_lists_raters_assignments_and_judgments_with_filters(admin_client_logged, live_study):
    rater = make_rater(live_study, "worker-77")
    rate(rater, 1)
    pages = [
        ("/admin/raters/rater/", {"q": "worker-77", "status__exact": "active", "provider__exact": "prolific"}),
        ("/admin/raters/assignment/", {"status__exact": "submitted"}),
        ("/admin/raters/judgment/", {"excluded__exact": "0", "too_fast__exact": "0", "is_gold__exact": "0",
                                     "choice__exact": "left"}),
    ]
    for address, query in pages:
        response = admin_client_logged.get(address, query)
        assert response.status_code == 200 and response.context["cl"].result_count == 1, address
    assert admin_client_logged.get(f"/admin/raters/rater/{rater.pk}/change/").status_code == 200
    assert rater.token not in text(admin_client_logged.get(f"/admin/raters/rater/{rater.pk}/change/"))
    assert admin_client_logged.get("/admin/raters/judgment/add/").status_code == 403


def test_admin_block_action_goes_through_the_service(admin_client_logged, live_study):
    rater = make_rater(live_study, "w1")
    rate(rater, 1)
    admin_client_logged.post("/admin/raters/rater/", {"action": "block_raters", "_selected_action": [rater.pk]})
    rater.refresh_from_db()
    assert rater.status == Rater.Status.BLOCKED
    assert set(rater.judgments.values_list("excluded", flat=True)) == {True}


# --- the periodic reclaim task --------------------------------------------------------------------------

def test_reclaim_task_returns_an_expired_lease_to_the_pool(live_study):
    # apply() runs the task in this process whether or not a broker is configured (CI sets one).
    Study.objects.filter(pk=live_study.pk).update(lease_ttl_seconds=60)
    live_study.refresh_from_db()
    fresh = assignment_claim(rater=make_rater(live_study, "still-here"))
    claim = assignment_claim(rater=make_rater(live_study, "walked-away"), now=timezone.now() - timedelta(minutes=5))
    assert reclaim_expired_leases_task.apply().get() == 1
    statuses = dict(Assignment.objects.values_list("pk", "status"))
    assert statuses == {claim.assignment.pk: Assignment.Status.EXPIRED, fresh.assignment.pk: Assignment.Status.LEASED}
    assert Comparison.objects.get(pk=claim.assignment.comparison_id).load == 0
    assert reclaim_expired_leases_task.apply().get() == 0  # idempotent


def test_reclaim_beat_entry_names_the_registered_task_within_its_time_limit():
    (entry,) = BEAT_SCHEDULE.values()
    assert entry["task"] in current_app.tasks
    assert reclaim_expired_leases_task.time_limit < entry["schedule"] == RECLAIM_INTERVAL_SECONDS
    assert entry["options"]["expires"] <= RECLAIM_INTERVAL_SECONDS


def test_tasks_module_is_importable_from_settings_before_django_is_set_up():
    code = "import sys, raters.tasks; assert 'raters.models' not in sys.modules; print(len(raters.tasks.BEAT_SCHEDULE))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "1"
