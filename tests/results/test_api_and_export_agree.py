"""The results API and the exported CSV agree: rates recomputed from the judgments CSV equal the API's."""
from __future__ import annotations

import csv
import io
import math
from collections import Counter

import pytest

from evalsite.studies.models import Study
from tests.results.conftest import make_judged_study

pytestmark = pytest.mark.django_db

API = "/api/v1/studies"


def csv_rows(response) -> list[dict]:
    assert response.status_code == 200
    return list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode("utf-8"))))


def wilson(count: float, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """Wilson score interval, written out here independently of evalsite.stats."""
    p = count / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def counted(rows: list[dict], *, include_excluded: bool = False) -> list[dict]:
    return [r for r in rows if r["gold"] == "false" and (include_excluded or r["excluded"] == "false")]


def recompute(rows: list[dict], candidate: str, reference: str) -> dict:
    pair = [r for r in rows if {r["system_left"], r["system_right"]} == {candidate, reference}]
    wins = sum(r["winner"] == candidate for r in pair)
    losses = sum(r["winner"] == reference for r in pair)
    ties = sum(r["winner"] == "tie" for r in pair)
    return {"n": len(pair), "wins": wins, "ties": ties, "losses": losses,
            "both_bad": sum(r["choice"] == "both_bad" for r in pair), "rows": pair}


@pytest.mark.parametrize("include_excluded", [False, True])
def test_head_to_head_rates_from_the_api_equal_rates_recomputed_from_the_judgments_csv(api, include_excluded):
    study = make_judged_study(n_prompts=14, candidates=2, raters=7)
    query = "?include_excluded=true" if include_excluded else ""
    body = api.get(f"{API}/{study.slug}/results/{query}").json()
    rows = counted(csv_rows(api.get(f"{API}/{study.slug}/results/judgments.csv")), include_excluded=include_excluded)
    summary = body["summary"]
    reference = summary["reference_name"]
    assert body["judgments"]["used"] == summary["n_judgments"] == len(rows)
    assert len(summary["head_to_head"]) == 2
    for h in summary["head_to_head"]:
        mine = recompute(rows, h["candidate_name"], reference)
        assert mine["wins"] and mine["ties"] and mine["losses"]  # the data exercises every outcome
        assert (h["n"], h["wins"], h["ties"], h["losses"], h["both_bad"]) == (
            mine["n"], mine["wins"], mine["ties"], mine["losses"], mine["both_bad"])
        n = mine["n"]
        for key, count in (("win", mine["wins"]), ("tie", mine["ties"]), ("loss", mine["losses"]),
                           ("win_or_tie", mine["wins"] + mine["ties"]), ("preference", mine["wins"] + mine["ties"] / 2)):
            assert h[key]["rate"] == pytest.approx(count / n, abs=1e-12), key
            low, high = wilson(count, n)
            assert (h[key]["wilson"]["low"], h[key]["wilson"]["high"]) == pytest.approx((low, high), abs=1e-9), key
            assert h[key]["bootstrap"]["low"] <= h[key]["rate"] <= h[key]["bootstrap"]["high"], key
        assert h["sign_test"]["successes"] == mine["wins"] and h["sign_test"]["n"] == mine["wins"] + mine["losses"]


def test_position_bias_agreement_inputs_and_categories_from_the_api_match_the_csv(api):
    study = make_judged_study(n_prompts=16, candidates=1, raters=6)
    summary = api.get(f"{API}/{study.slug}/results/").json()["summary"]
    rows = counted(csv_rows(api.get(f"{API}/{study.slug}/results/judgments.csv")))
    decisive = [r for r in rows if r["choice"] in ("left", "right")]
    assert summary["position_bias"]["n_decisive"] == len(decisive)
    assert summary["position_bias"]["left_chosen"] == sum(r["choice"] == "left" for r in decisive)
    assert summary["n_raters"] == len({r["rater"] for r in rows})
    assert summary["n_prompts"] == len({r["prompt_id"] for r in rows})
    per_comparison = Counter(r["comparison_id"] for r in rows)
    assert summary["agreement"]["n_items"] == sum(1 for v in per_comparison.values() if v >= 2)
    reference = summary["reference_name"]
    for row in summary["by_category"]:
        mine = recompute([r for r in rows if r["category"] == row["category_name"]], row["candidate_name"], reference)
        assert (row["n"], row["wins"], row["ties"], row["losses"]) == (
            mine["n"], mine["wins"], mine["ties"], mine["losses"])
        assert row["n_prompts"] == len({r["prompt_id"] for r in mine["rows"]})
    assert {row["category_name"] for row in summary["by_category"]} == {r["category"] for r in rows}


def test_mean_strength_from_the_api_equals_the_signed_strengths_in_the_csv(api):
    study = make_judged_study(n_prompts=12, candidates=1, scale=Study.Scale.AB_TIE_STRENGTH)
    summary = api.get(f"{API}/{study.slug}/results/").json()["summary"]
    rows = counted(csv_rows(api.get(f"{API}/{study.slug}/results/judgments.csv")))
    h = summary["head_to_head"][0]
    value = {"slightly": 1, "much": 2}
    signed = [0 if r["winner"] == "tie" else value[r["strength"]] * (1 if r["winner"] == h["candidate_name"] else -1)
              for r in rows]
    assert h["strength"]["n"] == len(signed)
    assert h["strength"]["mean"] == pytest.approx(sum(signed) / len(signed), abs=1e-12)


def test_the_summary_csv_carries_the_same_numbers_as_the_api(api, judged_study):
    body = api.get(f"{API}/{judged_study.slug}/results/").json()
    rows = csv_rows(api.get(f"{API}/{judged_study.slug}/results/summary.csv"))
    by_key = {(r["section"], r["system"], r["metric"], r["interval"]): r for r in rows}
    for h in body["summary"]["head_to_head"]:
        row = by_key[("head_to_head", h["candidate_name"], "win_or_tie", "cluster-bootstrap-percentile")]
        assert float(row["value"]) == h["win_or_tie"]["rate"]
        assert (float(row["ci_low"]), float(row["ci_high"])) == (h["win_or_tie"]["bootstrap"]["low"],
                                                                  h["win_or_tie"]["bootstrap"]["high"])
        assert int(by_key[("head_to_head", h["candidate_name"], "wins", "")]["value"]) == h["wins"]
    for r in body["summary"]["bradley_terry"]["ratings"]:
        assert float(by_key[("bradley_terry", r["system_name"], "elo", "cluster-bootstrap-percentile")]["value"]) == r["elo"]
    used = by_key[("study", "", "judgments_used", "")]
    assert int(used["value"]) == body["judgments"]["used"]
