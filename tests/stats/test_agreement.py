import math

import krippendorff
import numpy as np
import pytest
from statsmodels.stats.inter_rater import fleiss_kappa as statsmodels_fleiss_kappa

from evalsite.stats import agreement
from evalsite.stats.agreement import item_counts, labels

from .simulate import judgments


def rated_study(seed, n_items=150, n_raters=12, raters_per_item=3, missing=0.0):
    """Items = comparisons of systems 0 and 1, each judged by distinct raters who mostly agree on a
    per-item truth; ``missing`` drops that share of judgments at random (unequal raters per item)."""
    rng = np.random.default_rng(seed)
    truth = rng.choice([0.0, 0.5, 1.0], size=n_items, p=[0.4, 0.2, 0.4])
    rows = []
    for item in range(n_items):
        for rater in rng.choice(n_raters, size=raters_per_item, replace=False):
            if rng.random() < missing:
                continue
            outcome = truth[item] if rng.random() < 0.7 else rng.choice([0.0, 0.5, 1.0])
            flip = rng.random() < 0.5
            rows.append((1 if flip else 0, 0 if flip else 1, 1 - outcome if flip else outcome, item, rater))
    a, b, outcome, item, rater = (np.array(col) for col in zip(*rows, strict=True))
    return judgments(system_a=a, system_b=b, outcome=outcome, prompt=item, item=item, rater=rater)


def reliability_matrix(j):
    """raters x items, label or nan, the krippendorff package's input."""
    label = labels(j)
    matrix = np.full((int(j.rater.max()) + 1, int(j.item.max()) + 1), np.nan)
    matrix[j.rater, j.item] = label
    return matrix


@pytest.mark.parametrize("missing", [0.0, 0.3])
def test_krippendorff_alpha_matches_the_krippendorff_package(missing):
    j = rated_study(seed=1, missing=missing)
    expected = krippendorff.alpha(reliability_data=reliability_matrix(j), level_of_measurement="nominal")
    assert agreement(j).krippendorff_alpha == pytest.approx(expected, abs=1e-12)


def test_fleiss_kappa_matches_statsmodels_with_equal_raters_per_item():
    j = rated_study(seed=2, raters_per_item=4)
    result = agreement(j)
    table = item_counts(j.item, labels(j))
    assert result.fleiss_kappa == pytest.approx(statsmodels_fleiss_kappa(table, method="fleiss"), abs=1e-12)
    assert (result.fleiss_items, result.fleiss_raters_per_item) == (150, 4)


def test_fleiss_kappa_with_unequal_raters_uses_the_items_with_the_modal_count():
    j = rated_study(seed=3, raters_per_item=3, missing=0.25)
    table = item_counts(j.item, labels(j))
    per_item = table.sum(axis=1)
    modal = np.bincount(per_item[per_item >= 2].astype(int)).argmax()
    result = agreement(j)
    assert result.fleiss_raters_per_item == modal
    assert result.fleiss_items == int((per_item == modal).sum())
    assert result.fleiss_kappa == pytest.approx(statsmodels_fleiss_kappa(table[per_item == modal]), abs=1e-12)
    # Krippendorff's alpha uses every item with two or more judgments.
    assert result.n_items == int((per_item >= 2).sum()) > result.fleiss_items


def test_labels_do_not_depend_on_which_system_was_a():
    j = judgments(system_a=[0, 1, 0, 1, 3], system_b=[1, 0, 1, 0, 2], outcome=[1.0, 0.0, 0.5, 1.0, 1.0], prompt=[0] * 5)
    # 0 preferred, 0 preferred, tie, 1 preferred, 3 (the higher index) preferred
    assert labels(j).tolist() == [0, 0, 1, 2, 2]


def test_percent_agreement_with_and_without_ties_on_a_hand_made_case():
    # Item 0: lower, lower, tie -> pairs (ll) agree, (lt) (lt) differ: 1 of 3.
    # Item 1: higher, higher -> 1 of 1.  Item 2: one judgment, no pair.
    # With ties: 2 of 4 pairs. Without ties: item 0 has (ll) 1 of 1, item 1 1 of 1 -> 2 of 2.
    j = judgments(system_a=[0, 0, 0, 0, 1, 0], system_b=[1, 1, 1, 1, 0, 1], outcome=[1.0, 1.0, 0.5, 0.0, 1.0, 1.0],
                  prompt=[0, 0, 0, 1, 1, 2], rater=[1, 2, 3, 1, 2, 1])
    result = agreement(j)
    assert (result.percent, result.n_pairs) == (0.5, 4)
    assert (result.percent_without_ties, result.n_pairs_without_ties) == (1.0, 2)
    assert (result.n_items, result.n_judgments) == (2, 5)


def test_each_raters_agreement_with_the_majority_of_the_others():
    # Comparison 0, five raters: four say "0 preferred", rater 9 says "1 preferred".
    # Comparison 1: rater 1 says 0, rater 2 says 1, rater 3 says tie; for each of them the two others
    # disagree, so nobody is scored there.
    j = judgments(
        system_a=[0] * 5 + [0] * 3, system_b=[1] * 5 + [1] * 3,
        outcome=[1.0, 1.0, 1.0, 1.0, 0.0] + [1.0, 0.0, 0.5],
        prompt=[0] * 5 + [1] * 3, rater=[1, 2, 3, 4, 9] + [1, 2, 3],
    )
    by_rater = {r.rater: r for r in agreement(j).raters}
    assert (by_rater[9].n_scored, by_rater[9].agreed) == (1, 0)
    assert (by_rater[4].n_scored, by_rater[4].agreed) == (1, 1)
    assert (by_rater[1].n_judgments, by_rater[1].n_scored, by_rater[1].agreed) == (2, 1, 1)
    assert (by_rater[3].n_scored, by_rater[3].rate) == (1, 1.0)
    assert by_rater[9].wilson.high < 0.8


def test_a_careless_rater_shows_low_agreement_with_the_others():
    j = rated_study(seed=4, n_items=300, n_raters=10, raters_per_item=4)
    # Rater 0 now answers at random.
    rng = np.random.default_rng(0)
    outcome = j.outcome.copy()
    outcome[j.rater == 0] = rng.choice([0.0, 0.5, 1.0], size=int((j.rater == 0).sum()))
    noisy = judgments(system_a=j.system_a, system_b=j.system_b, outcome=outcome, prompt=j.prompt, item=j.item,
                      rater=j.rater)
    rates = {r.rater: r for r in agreement(noisy).raters}
    careful = [r.rate for k, r in rates.items() if k != 0]
    assert rates[0].wilson.high < min(careful)


def test_undefined_agreement_is_nan_not_an_error():
    single = judgments(system_a=[0, 0], system_b=[1, 1], outcome=[1.0, 0.0], prompt=[0, 1])  # no item twice
    result = agreement(single)
    assert result.n_items == 0 and result.n_pairs == 0
    assert math.isnan(result.percent) and math.isnan(result.fleiss_kappa) and math.isnan(result.krippendorff_alpha)
    same = judgments(system_a=[0, 0, 0], system_b=[1, 1, 1], outcome=[1.0] * 3, prompt=[0] * 3)
    result = agreement(same)
    assert result.percent == 1.0
    assert math.isnan(result.fleiss_kappa) and math.isnan(result.krippendorff_alpha)
    empty = agreement(judgments(system_a=[], system_b=[], outcome=[], prompt=[], rater=[]))
    assert empty.n_items == 0 and empty.raters == []
