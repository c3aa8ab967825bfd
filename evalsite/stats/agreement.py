"""Agreement between raters who judged the same comparison.

Each judgment becomes one of three nominal labels about its comparison (item): the lower-indexed system
preferred, a tie (both-bad included), or the higher-indexed system preferred, so judgments made with a and
b in either order, or shown in either order, compare correctly. Only items with at least two judgments say
anything about agreement.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .data import Judgments, compact
from .proportions import wilson_interval
from .results import Interval, ToDict

LABELS = ("lower preferred", "tie", "higher preferred")
_TIE = 1


def labels(judgments: Judgments) -> np.ndarray:
    """0 = lower-indexed system preferred, 1 = tie or both-bad, 2 = higher-indexed system preferred."""
    j = judgments
    score_lo = np.where(j.system_a < j.system_b, j.outcome, 1.0 - j.outcome)
    return np.rint(2.0 * (1.0 - score_lo)).astype(np.int64)


def item_counts(items: np.ndarray, label: np.ndarray, n_labels: int = 3) -> np.ndarray:
    """(items x labels) matrix: how many judgments of each item chose each label."""
    if not len(items):
        return np.zeros((0, n_labels))
    n_items = int(items.max()) + 1
    return np.bincount(items * n_labels + label, minlength=n_items * n_labels).reshape(n_items, n_labels).astype(float)


def percent_agreement(counts: np.ndarray) -> tuple[float, int]:
    """(share of agreeing pairs, number of pairs): over all pairs of judgments of the same item, pooled,
    sum_u sum_k n_uk (n_uk - 1) / sum_u m_u (m_u - 1), with n_uk the judgments of item u with label k and
    m_u = sum_k n_uk. This is the probability that two judgments of a random comparison, drawn in
    proportion to its number of pairs, agree (the measure of Zheng et al., "Judging LLM-as-a-judge with
    MT-Bench and Chatbot Arena", NeurIPS 2023, who report it with and without ties)."""
    m = counts.sum(axis=1)
    pairs = float((m * (m - 1)).sum())
    if pairs == 0:
        return math.nan, 0
    return float((counts * (counts - 1)).sum() / pairs), int(pairs // 2)


def fleiss_kappa(counts: np.ndarray) -> tuple[float, int, int]:
    """(kappa, items used, raters per item). Fleiss, "Measuring nominal scale agreement among many raters",
    Psychological Bulletin 76 (1971)::

        P_u = (sum_k n_uk^2 - m) / (m (m - 1)),   P_bar = mean_u P_u
        p_k = sum_u n_uk / (N m),                 P_e = sum_k p_k^2
        kappa = (P_bar - P_e) / (1 - P_e)

    The formula assumes the same number m of ratings per item. When items differ (some judgments excluded,
    some comparisons still open) only the items with the most common count m >= 2 are used (the larger m on
    a tie in frequency), and their number is reported; Krippendorff's alpha below uses every item. nan when
    no item has two ratings or every rating has the same label (P_e = 1, kappa undefined).
    """
    m_u = counts.sum(axis=1).astype(np.int64)
    eligible = m_u[m_u >= 2]
    if not len(eligible):
        return math.nan, 0, 0
    freq = np.bincount(eligible)
    m = int(np.flatnonzero(freq == freq.max())[-1])
    table = counts[m_u == m]
    n_items = len(table)
    p_u = ((table * table).sum(axis=1) - m) / (m * (m - 1))
    p_bar = p_u.mean()
    p_k = table.sum(axis=0) / (n_items * m)
    p_e = float((p_k * p_k).sum())
    if p_e >= 1.0:
        return math.nan, n_items, m
    return float((p_bar - p_e) / (1.0 - p_e)), n_items, m


def krippendorff_alpha_nominal(counts: np.ndarray) -> float:
    """Krippendorff's alpha for nominal data, from the items x labels counts (missing ratings are simply
    absent, so any number of raters per item works). Krippendorff, "Computing Krippendorff's alpha-
    reliability" (2011)::

        o_ck = sum_u (n_uc n_uk - [c = k] n_uc) / (m_u - 1)     over items with m_u >= 2
        n_c = sum_k o_ck,  n = sum_c n_c
        alpha = 1 - (n - 1) * sum_{c != k} o_ck / sum_{c != k} n_c n_k

    nan when fewer than two pairable ratings or no disagreement is possible (one label only)."""
    m_u = counts.sum(axis=1)
    pairable = counts[m_u >= 2]
    if not len(pairable):
        return math.nan
    weights = 1.0 / (pairable.sum(axis=1) - 1.0)
    coincidence = np.einsum("u,uc,uk->ck", weights, pairable, pairable) - np.diag((weights[:, None] * pairable).sum(axis=0))
    n_c = coincidence.sum(axis=1)
    n = n_c.sum()
    off = ~np.eye(len(n_c), dtype=bool)
    expected = (np.outer(n_c, n_c))[off].sum()
    if n <= 1 or expected == 0:
        return math.nan
    return float(1.0 - (n - 1.0) * coincidence[off].sum() / expected)


@dataclass(frozen=True)
class RaterAgreement(ToDict):
    """How often one rater chose what most of the other raters of the same comparison chose."""

    rater: int
    n_judgments: int
    n_scored: int  # judgments whose comparison had a unique most-chosen label among the other raters
    agreed: int
    rate: float
    wilson: Interval


def majority_agreement(items: np.ndarray, label: np.ndarray, rater: np.ndarray, confidence: float = 0.95,
                       n_labels: int = 3) -> list[RaterAgreement]:
    """For each judgment, the label chosen most often by the *other* judgments of the same item (counts of
    the item minus this judgment); if one label is strictly most frequent, the judgment is scored as
    agreeing or not. Each rater's rate is agreed / scored, with a Wilson interval (proportions.py). This is
    the leave-one-out majority vote commonly used to screen crowd workers; leaving the rater out of the
    majority avoids crediting agreement with oneself, which inflates the measure at small k."""
    if not len(items):
        return []
    counts = item_counts(items, label, n_labels)
    others = counts[items].copy()
    others[np.arange(len(items)), label] -= 1.0
    top = others.max(axis=1)
    unique_top = (others == top[:, None]).sum(axis=1) == 1
    scored = (top > 0) & unique_top
    agreed = scored & (others.argmax(axis=1) == label)
    rater_ids, r = compact(rater)
    n_r = np.bincount(r, minlength=len(rater_ids))
    s_r = np.bincount(r, weights=scored, minlength=len(rater_ids)).astype(np.int64)
    a_r = np.bincount(r, weights=agreed, minlength=len(rater_ids)).astype(np.int64)
    return [
        RaterAgreement(rater=int(rater_ids[i]), n_judgments=int(n_r[i]), n_scored=int(s_r[i]), agreed=int(a_r[i]),
                       rate=a_r[i] / s_r[i] if s_r[i] else math.nan, wilson=wilson_interval(a_r[i], s_r[i], confidence))
        for i in range(len(rater_ids))
    ]


@dataclass(frozen=True)
class Agreement(ToDict):
    n_items: int  # comparisons with at least two judgments
    n_judgments: int  # judgments on those comparisons
    percent: float  # pooled pairwise agreement, ties as a label
    n_pairs: int
    percent_without_ties: float  # the same among decisive judgments only (ties and both-bad left out)
    n_pairs_without_ties: int
    fleiss_kappa: float
    fleiss_items: int
    fleiss_raters_per_item: int
    krippendorff_alpha: float
    raters: list[RaterAgreement]


def agreement(judgments: Judgments, confidence: float = 0.95) -> Agreement:
    """Percent agreement with and without ties, Fleiss' kappa, Krippendorff's alpha (nominal, three labels)
    and each rater's agreement with the majority of the others (when the judgments carry raters)."""
    j = judgments
    _, items = compact(j.items())
    label = labels(j)
    counts = item_counts(items, label)
    m_u = counts.sum(axis=1)
    multi = m_u >= 2
    pct, pairs = percent_agreement(counts)
    decisive = counts.copy()
    decisive[:, _TIE] = 0.0
    pct_nt, pairs_nt = percent_agreement(decisive)
    kappa, k_items, k_m = fleiss_kappa(counts)
    raters = [] if j.rater is None else majority_agreement(items, label, j.rater, confidence)
    return Agreement(
        n_items=int(multi.sum()), n_judgments=int(m_u[multi].sum()), percent=pct, n_pairs=pairs,
        percent_without_ties=pct_nt, n_pairs_without_ties=pairs_nt, fleiss_kappa=kappa, fleiss_items=k_items,
        fleiss_raters_per_item=k_m, krippendorff_alpha=krippendorff_alpha_nominal(counts), raters=raters,
    )
