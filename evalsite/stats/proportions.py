"""Intervals and tests for a single proportion."""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

from .results import Interval, ToDict


@functools.lru_cache(maxsize=16)
def z_value(confidence: float) -> float:
    """The standard normal quantile z with P(|Z| <= z) = confidence (1.959964 for 0.95)."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence!r}")
    return float(sps.norm.ppf(0.5 + confidence / 2.0))


def wilson_bounds(count, n, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised Wilson score interval for count successes in n trials.

    With p = count / n and z the normal quantile for the confidence level::

        centre = (p + z^2 / (2n)) / (1 + z^2 / n)
        half   = z / (1 + z^2 / n) * sqrt(p (1 - p) / n + z^2 / (4 n^2))
        interval = [centre - half, centre + half]

    Source: E. B. Wilson, "Probable inference, the law of succession, and statistical inference", JASA 22
    (1927); recommended over the Wald interval by Brown, Cai & DasGupta, "Interval estimation for a binomial
    proportion", Statistical Science 16 (2001). Unlike Wald it stays inside [0, 1] and is not degenerate at
    0 or n successes. ``count`` may be fractional (ties counted as half). n = 0 gives (nan, nan).
    """
    count = np.asarray(count, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    z = z_value(confidence)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = count / n
        denom = 1.0 + z * z / n
        centre = (p + z * z / (2.0 * n)) / denom
        half = z / denom * np.sqrt(np.clip(p * (1.0 - p), 0.0, None) / n + z * z / (4.0 * n * n))
    low = np.where(n > 0, np.clip(centre - half, 0.0, 1.0), np.nan)
    high = np.where(n > 0, np.clip(centre + half, 0.0, 1.0), np.nan)
    return low, high


def wilson_interval(count: float, n: int, confidence: float = 0.95) -> Interval:
    """The Wilson score interval (see :func:`wilson_bounds`) as an :class:`Interval`."""
    low, high = wilson_bounds(count, n, confidence)
    return Interval(float(low), float(high), "wilson")


@dataclass(frozen=True)
class BinomialTest(ToDict):
    """``successes`` of ``n`` against the null proportion ``null`` (two-sided, exact)."""

    successes: int
    n: int
    null: float
    p_value: float


def sign_test(wins: int, losses: int) -> BinomialTest:
    """Two-sided sign test of "neither system is preferred" on the decisive (non-tie) judgments.

    Under the null each decisive judgment is a win with probability 1/2, so wins ~ Binomial(wins + losses,
    1/2); the p-value is the exact two-sided binomial p (scipy.stats.binomtest, which sums the probabilities
    of all outcomes no more likely than the one observed). Ties carry no sign and are left out, as in the
    classical sign test (Conover, "Practical Nonparametric Statistics", 3rd ed., 1999, the sign test).

    It treats judgments as independent; several judgments of one prompt are not, so read it beside the
    cluster-bootstrap interval, which accounts for that. No decisive judgments gives p = 1.
    """
    return binomial_test(wins, wins + losses, 0.5)


def binomial_test(successes: int, n: int, null: float = 0.5) -> BinomialTest:
    successes, n = int(successes), int(n)
    p = 1.0 if n == 0 else float(sps.binomtest(successes, n, null, alternative="two-sided").pvalue)
    return BinomialTest(successes=successes, n=n, null=null, p_value=p)


@dataclass(frozen=True)
class PositionBias(ToDict):
    """How often raters chose the response shown on the left, among judgments that chose one."""

    n_decisive: int
    left_chosen: int
    left_share: float
    wilson: Interval
    test: BinomialTest
    n_unknown_side: int


def position_bias(outcome: np.ndarray, left_is_a: np.ndarray | None, confidence: float = 0.95) -> PositionBias:
    """Share of decisive choices that went to the left response, a Wilson interval, and a binomial test.

    A judgment chose left when (outcome = 1 and a was on the left) or (outcome = 0 and b was on the left).
    Ties and both-bad choose no side and are left out. With sides randomised by the server, an unbiased
    rater population gives 1/2; the test is the exact two-sided binomial test of share = 1/2. Position bias as
    a preference for one position regardless of content is discussed for LLM judges by Zheng et al.,
    "Judging LLM-as-a-judge with MT-Bench and Chatbot Arena" (NeurIPS 2023); human raters show it too.
    """
    outcome = np.asarray(outcome, dtype=np.float64)
    if left_is_a is None:
        empty = BinomialTest(0, 0, 0.5, 1.0)
        return PositionBias(0, 0, math.nan, Interval(math.nan, math.nan, "wilson"), empty, len(outcome))
    left_is_a = np.asarray(left_is_a, dtype=bool)
    decisive = outcome != 0.5
    left = decisive & ((outcome == 1.0) == left_is_a)
    n, k = int(decisive.sum()), int(left.sum())
    return PositionBias(
        n_decisive=n,
        left_chosen=k,
        left_share=k / n if n else math.nan,
        wilson=wilson_interval(k, n, confidence),
        test=binomial_test(k, n, 0.5),
        n_unknown_side=0,
    )
