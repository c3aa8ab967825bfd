import json
import sys
from pathlib import Path

import numpy as np
import pytest

from evalsite.stats import Judgments, summarize

from .simulate import judgments

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from stats_bench import synthetic_study  # noqa: E402

SYSTEMS = ["reference", "cand-1", "cand-2", "cand-3", "cand-4"]
CATEGORIES = [f"category-{i}" for i in range(8)]


@pytest.fixture(scope="module")
def study():
    return synthetic_study(n_prompts=200)


def test_summarize_computes_every_statistic_of_a_study(study):
    result = summarize(study, systems=SYSTEMS, reference=0, categories=CATEGORIES, rounds=200)
    assert result.n_judgments == len(study) == 20_000
    assert result.n_prompts == 200 and result.n_raters == 400
    assert [h.candidate for h in result.head_to_head] == [1, 2, 3, 4]
    assert [r.system for r in result.bradley_terry.ratings] == [0, 1, 2, 3, 4]
    assert [f.feature for f in result.style.features] == ["length", "headers", "lists", "bold"]
    assert result.style.features[0].interval.low > 0  # the bench study plants a length effect
    assert result.position_bias.n_decisive > 0
    assert 0 < result.agreement.n_items <= 2000
    assert len(result.by_category) == 8 * 4
    assert result.settings.rounds == 200


def test_to_dict_is_json_with_names_beside_indices(study):
    data = summarize(study, systems=SYSTEMS, reference=0, categories=CATEGORIES, rounds=100).to_dict()
    text = json.dumps(data, allow_nan=False)  # nan would be invalid JSON: undefined numbers become null
    assert json.loads(text) == data
    first = data["head_to_head"][0]
    assert (first["candidate_name"], first["reference_name"]) == ("cand-1", "reference")
    assert set(first["win_or_tie"]) == {"count", "n", "rate", "wilson", "bootstrap"}
    assert data["bradley_terry"]["ratings"][2]["system_name"] == "cand-2"
    assert data["by_category"][0]["category_name"] == "category-0"
    assert data["style"]["candidates"][0]["candidate_name"] == "cand-1"


def test_summarize_is_reproducible_for_a_seed(study):
    one = summarize(study, systems=SYSTEMS, reference=0, categories=CATEGORIES, rounds=100, seed=3).to_dict()
    two = summarize(study, systems=SYSTEMS, reference=0, categories=CATEGORIES, rounds=100, seed=3).to_dict()
    assert one == two


def test_summarize_with_no_judgments_gives_an_empty_but_complete_summary():
    empty = judgments(system_a=[], system_b=[], outcome=[], prompt=[])
    result = summarize(empty, systems=["reference", "candidate"], reference=0)
    assert result.n_judgments == 0 and result.head_to_head == [] and result.bradley_terry.ratings == []
    assert result.style is None and result.agreement.n_items == 0 and result.by_category == []
    json.dumps(result.to_dict(), allow_nan=False)


def test_summarize_refuses_indices_that_have_no_name():
    j = judgments(system_a=[0, 2], system_b=[1, 0], outcome=[1.0, 0.0], prompt=[0, 1], category=[0, 3])
    with pytest.raises(ValueError, match="system index 2"):
        summarize(j, systems=["a", "b"], reference=0)
    with pytest.raises(ValueError, match="reference index 5"):
        summarize(j, systems=["a", "b", "c"], reference=5)
    with pytest.raises(ValueError, match="category index 3"):
        summarize(j, systems=["a", "b", "c"], reference=0, categories=["x"])


@pytest.mark.parametrize("kwargs, message", [
    (dict(outcome=[1.0, 0.7]), r"outcome must be .* position 1 is 0.7"),
    (dict(system_b=[1, 1]), "judgment 1 compares a system with itself"),
    (dict(prompt=[0]), "prompt has 1 entries but system_a has 2"),
    (dict(both_bad=[True, False]), "judgment 0 is both-bad but its outcome is not 0.5"),
    (dict(strength=[1.0, -1.0]), "strength must be >= 0 .* position 1"),
    (dict(style_a=[[1, 1, 1, 1], [1, 1, 1, 1]]), "style_a and style_b must be given together"),
    (dict(style_a=np.ones((2, 3)), style_b=np.ones((2, 3))), r"style_a must have shape \(2, 4\)"),
    (dict(style_a=-np.ones((2, 4)), style_b=np.ones((2, 4))), "cannot be negative; row 0"),
    (dict(system_a=[0.5, 1]), "system_a must hold integers"),
])
def test_judgments_refuse_inconsistent_arrays_and_say_where(kwargs, message):
    arrays = dict(system_a=[0, 1], system_b=[1, 0], outcome=[1.0, 0.0], prompt=[0, 1])
    arrays.update(kwargs)
    with pytest.raises(ValueError, match=message):
        Judgments(**{k: np.asarray(v) for k, v in arrays.items()})


def test_items_default_to_one_per_prompt_and_unordered_pair():
    j = judgments(system_a=[0, 1, 0, 0, 2], system_b=[1, 0, 2, 1, 0], outcome=[1.0] * 5, prompt=[7, 7, 7, 8, 7])
    items = j.items()
    assert items[0] == items[1] and items[2] == items[4]
    assert len(set(items.tolist())) == 3


def test_summarize_without_a_reference_rates_all_systems_around_their_mean(study):
    result = summarize(study, systems=SYSTEMS, reference=None, categories=CATEGORIES, rounds=50)
    assert result.head_to_head == [] and result.by_category == []
    assert result.bradley_terry.anchor == "mean"
    assert result.style.candidates == [] and len(result.style.ratings) == 5
