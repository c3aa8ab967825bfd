"""The results page: who may see it, what it shows, the excluded toggle, caching, an empty study."""
from __future__ import annotations

import html as htmllib
import json
import re

import pytest
from django.urls import reverse

from evalsite.results import selectors
from evalsite.studies.models import Comparison, Prompt, System
from raters.models import Judgment
from raters.services import assignment_claim, judgment_submit, rater_block, rater_unblock
from tests.factories import make_study_with_responses
from tests.raters.conftest import make_live_study
from tests.raters.conftest import make_rater as enter_rater
from tests.results.conftest import judge, make_judged_study, make_rater

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


def page(client, study, query: str = "", **headers):
    response = client.get(reverse("results:page", args=[study.slug]) + query, **headers)
    assert response.status_code == 200
    return htmllib.unescape(response.content.decode())


def head_to_head_cells(text: str) -> list[str]:
    """The candidate rows of the head-to-head table, as their visible text."""
    table = text.split('id="h2h-heading"', 1)[1].split("</table>", 1)[0]
    return [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row)).strip()
            for row in table.split("<tbody>", 1)[1].split("</tr>")[:-1]]


# --- access ---------------------------------------------------------------------------------------------

def test_anonymous_visitors_are_sent_to_log_in(client, judged_study):
    response = client.get(reverse("results:page", args=[judged_study.slug]))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_logged_in_non_researchers_get_403(client, outsider, judged_study):
    client.force_login(outsider)
    assert client.get(reverse("results:page", args=[judged_study.slug])).status_code == 403


def test_unknown_study_is_404(researcher_client):
    assert researcher_client.get("/studies/no-such-study/results/").status_code == 404


def test_the_study_page_links_to_the_results(researcher_client, judged_study):
    text = researcher_client.get(reverse("studies:detail", args=[judged_study.slug])).content.decode()
    assert f'href="{reverse("results:page", args=[judged_study.slug])}"' in text


# --- content --------------------------------------------------------------------------------------------

def test_page_shows_every_section_with_svg_charts_tables_and_the_interval_methods(researcher_client, judged_study):
    text = page(researcher_client, judged_study)
    for heading in ("Each candidate against reference", "Ratings of all systems", "Style or substance",
                    "Rater agreement", "Position bias", "By prompt category", "Win or tie by base model parameters",
                    "Win or tie by imitation data"):
        assert heading in text, heading
    svgs = re.findall(r"<svg[^>]*>.*?</svg>", text, flags=re.S)
    # head-to-head, ratings, style, and one scaling plot per numeric metadata key
    assert len(svgs) == 5
    assert all('role="img"' in svg and "<title" in svg for svg in svgs)
    assert "cluster bootstrap over prompts" in text and "1,000 rounds" in text and "Wilson" in text
    assert "<script" not in "".join(svgs)
    assert "cdn" not in text.lower()


def test_page_numbers_match_the_api(researcher_client, api, judged_study):
    body = api.get(f"/api/v1/studies/{judged_study.slug}/results/").json()
    rows = head_to_head_cells(page(researcher_client, judged_study))
    for h, row in zip(body["summary"]["head_to_head"], rows, strict=True):
        assert row.startswith(f"{h['candidate_name']} {h['n']} {h['wins']} {h['ties']} {h['losses']}")
        assert f"{100 * h['win_or_tie']['rate']:.1f}%" in row
        assert f"{100 * h['win_or_tie']['bootstrap']['low']:.1f}–{100 * h['win_or_tie']['bootstrap']['high']:.1f}%" in row


def test_scaling_plot_only_when_candidates_carry_numeric_metadata(researcher_client):
    study = make_judged_study(metadata=False, candidates=2)
    System.objects.filter(study=study, name="candidate-1").update(metadata={"params_b": "13"})  # text: not plotted
    text = page(researcher_client, study)
    assert "Win or tie by" not in text
    assert text.count("<svg") == 3


def test_system_names_are_escaped_in_charts_and_tables(researcher_client):
    study = make_judged_study(candidates=1)
    System.objects.filter(study=study, role=System.Role.CANDIDATE).update(name='<script>alert("x")</script>')
    raw = researcher_client.get(reverse("results:page", args=[study.slug])).content.decode()
    assert "<script>alert" not in raw
    assert "&lt;script&gt;alert" in raw


def test_empty_study_shows_a_clear_empty_state_and_no_charts(researcher_client):
    study = make_live_study(n_prompts=3)
    text = page(researcher_client, study)
    assert "No judgments to count yet" in text
    assert "<svg" not in text
    assert "0 judgments" in text


def test_study_with_only_excluded_judgments_offers_to_include_them(researcher_client):
    study = make_judged_study(n_prompts=4, gold=False)
    Judgment.objects.filter(comparison__study=study).update(excluded=True, excluded_reason="screened out")
    text = page(researcher_client, study)
    assert "No judgments to count yet" in text and "excluded by quality control" in text
    assert "?include_excluded=1" in text
    assert "<svg" in page(researcher_client, study, "?include_excluded=1")


# --- the excluded toggle --------------------------------------------------------------------------------

def test_excluded_judgments_are_left_out_by_default_and_counted_in_with_the_toggle(researcher_client, judged_study):
    excluded = Judgment.objects.filter(comparison__study=judged_study, excluded=True, is_gold=False).count()
    counted = Judgment.objects.filter(comparison__study=judged_study, excluded=False, is_gold=False).count()
    assert excluded and counted
    default = page(researcher_client, judged_study)
    assert f"{counted} judgments from" in default
    assert f"{excluded} judgments excluded by quality control are left out" in default
    assert f"Include the {excluded} excluded judgments" in default
    toggled = page(researcher_client, judged_study, "?include_excluded=1")
    assert f"{counted + excluded} judgments from" in toggled
    assert "Leave out the excluded judgments" in toggled
    assert head_to_head_cells(default) != head_to_head_cells(toggled)


def test_with_htmx_the_toggle_returns_only_the_results_body(researcher_client, judged_study):
    response = researcher_client.get(reverse("results:page", args=[judged_study.slug]) + "?include_excluded=1", **HTMX)
    text = response.content.decode()
    assert text.lstrip().startswith('<div id="results">') and "<html" not in text
    assert "HX-Request" in response["Vary"]


def test_gold_judgments_never_count(researcher_client, judged_study):
    gold = Judgment.objects.filter(comparison__study=judged_study, is_gold=True).count()
    assert gold
    results = selectors.study_results(study=judged_study, include_excluded=True)
    assert results.n_used == Judgment.objects.filter(comparison__study=judged_study, is_gold=False).count()
    assert f"{gold} gold judgments" in page(researcher_client, judged_study)


# --- caching --------------------------------------------------------------------------------------------

def test_second_view_comes_from_the_cache_and_a_new_judgment_changes_the_numbers(researcher_client,
                                                                                 django_assert_max_num_queries):
    study = make_judged_study(n_prompts=6, candidates=1, gold=False, excluded_rater=False)
    first = page(researcher_client, study)
    assert "from the cache" not in first
    with django_assert_max_num_queries(8):  # session, user, study, the version, the systems: no judgments read
        again = page(researcher_client, study)
    assert "from the cache" in again and head_to_head_cells(again) == head_to_head_cells(first)
    comparison = Comparison.objects.filter(study=study).select_related("response_a__system").first()
    judge(comparison, make_rater(study, 99), "a")
    after = page(researcher_client, study)
    assert "from the cache" not in after
    assert head_to_head_cells(after) != head_to_head_cells(first)


def test_blocking_and_unblocking_a_rater_recompute_the_results():
    study = make_live_study(n_prompts=6, judgments_per_comparison=2, min_seconds_per_judgment=0)
    raters = [enter_rater(study, f"w{i}") for i in range(3)]
    for rater, choice in zip(raters, ("left", "right", "tie"), strict=True):
        for _ in range(4):
            claim = assignment_claim(rater=rater)
            if claim.assignment is None:
                break
            judgment_submit(rater=rater, assignment_id=claim.assignment.pk, choice=choice)
    before = selectors.study_results(study=study)
    assert selectors.study_results(study=study).from_cache
    rater_block(rater=raters[0], reason="inattentive")
    blocked = selectors.study_results(study=study)
    assert not blocked.from_cache and blocked.n_used < before.n_used
    assert blocked.counts.excluded == before.n_used - blocked.n_used
    rater_unblock(rater=raters[0])
    # The judgments are back where they were, so the version is too, and the first entry is right again.
    restored = selectors.study_results(study=study)
    assert restored.n_used == before.n_used
    assert restored.to_dict()["summary"] == before.to_dict()["summary"]


def test_renaming_a_system_or_changing_its_metadata_is_seen_at_once(researcher_client, judged_study):
    page(researcher_client, judged_study)
    System.objects.filter(study=judged_study, name="candidate-1").update(name="koala-13b", metadata={"params_b": 99})
    text = page(researcher_client, judged_study)
    assert "koala-13b" in text and "99" in text


def test_a_category_change_by_import_is_seen_at_once(researcher_client):
    from evalsite.studies.services import prompts_import

    study = make_judged_study(n_prompts=4, candidates=1)
    assert "renamed-category" not in page(researcher_client, study)
    prompt = Prompt.objects.get(study=study, external_id="q0")
    line = json.dumps({"id": "q0", "prompt": prompt.text, "category": "renamed-category"}) + "\n"
    prompts_import(study=study, data=line.encode(), filename="fix.jsonl", replace=True)
    assert Prompt.objects.get(study=study, external_id="q0").category == "renamed-category"
    assert "renamed-category" in page(researcher_client, study)


def test_studies_with_no_reference_show_ratings_but_no_head_to_head(researcher_client):
    study = make_judged_study(candidates=2, metadata=False)
    System.objects.filter(study=study, role=System.Role.REFERENCE).update(role=System.Role.CANDIDATE)
    text = page(researcher_client, study)
    assert "no reference system" in text
    assert "Ratings of all systems" in text and "the average system is 1000" in text


def test_page_handles_a_study_without_categories(researcher_client):
    study = make_study_with_responses(n_prompts=4, candidates=1)
    from evalsite.studies.services import comparisons_build

    Prompt.objects.filter(study=study).update(category="")
    comparisons_build(study=study)
    for i, comparison in enumerate(Comparison.objects.filter(study=study)):
        judge(comparison, make_rater(study, i), "a" if i % 2 else "tie")
    text = page(researcher_client, study)
    assert "By prompt category" not in text and "Each candidate against reference" in text
