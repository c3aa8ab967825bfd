"""Bradley-Terry ratings for all systems, with cluster-bootstrap intervals and interval-respecting ranks.

Model (Bradley & Terry, "Rank analysis of incomplete block designs", Biometrika 39, 1952)::

    P(i preferred to j) = sigma(theta_i - theta_j),   sigma(x) = 1 / (1 + exp(-x))

A tie counts as half a win for each side (outcome 0.5 in the Bernoulli log-likelihood), as Chatbot Arena
does (Chiang et al., "Chatbot Arena", ICML 2024). With s_ij the score of i against j (wins + ties/2) and
n_ij the number of judgments of the pair, the penalised log-likelihood is::

    l(theta) = sum_{i<j} [ s_ij log sigma(theta_i - theta_j) + (n_ij - s_ij) log sigma(theta_j - theta_i) ]
               - (prior / 2) * |theta|^2

The maximum-likelihood estimate exists only when the "i scored against j" graph is strongly connected (Ford,
"Solution of a ranking problem from binary comparisons", Amer. Math. Monthly 64, 1957; Hunter, "MM
algorithms for generalized Bradley-Terry models", Ann. Statist. 32, 2004): a system that never won nor tied
has rating minus infinity. The small Gaussian prior (``prior`` = precision, default 0.01, i.e. a N(0, 10^2)
prior on log-strengths) keeps every rating finite; where the MLE exists it moves ratings by about
prior * theta / (n p (1 - p)), far below their standard error, and the result says whether the MLE exists.
``prior=0`` gives the plain MLE (then the data must be strongly connected).

The likelihood only sees differences, so ratings are reported anchored: the reference system at 0 (or the
mean at 0 when there is no reference). The Elo-like scale is ``1000 + theta * 400 / ln 10``: 400 points is a
factor 10 in odds, the convention of Arena's leaderboard, and the reference sits at 1000.

Fitting is Newton's method with step halving on the tiny systems x systems problem, vectorised over bootstrap
replicates: each replicate's sufficient statistics (n_ij, s_ij) are the prompt-resampled sums of per-prompt
counts (bootstrap.py), and its fit is warm-started at the full-data estimate, so 1,000 rounds cost a few
batched 5 x 5 solves.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.sparse.csgraph import connected_components
from scipy.special import expit, log_expit

from .bootstrap import DEFAULT_ROUNDS, DEFAULT_SEED, percentile_interval, resample_sums
from .data import Judgments, compact
from .results import Interval, ToDict

DEFAULT_PRIOR = 0.01
ELO_SCALE = 400.0 / math.log(10.0)
ELO_OFFSET = 1000.0


def to_elo(theta):
    """Natural-log-odds ratings to the Elo-like scale: 1000 + theta * 400 / ln 10."""
    return ELO_OFFSET + np.asarray(theta, dtype=np.float64) * ELO_SCALE


def incidence(pairs: np.ndarray, n_systems: int) -> np.ndarray:
    """(m x K) matrix with +1 at pair k's first system and -1 at its second: differences are theta @ D.T."""
    d = np.zeros((len(pairs), n_systems))
    d[np.arange(len(pairs)), pairs[:, 0]] = 1.0
    d[np.arange(len(pairs)), pairs[:, 1]] = -1.0
    return d


def _objective(theta, n, s, d, prior):
    diff = theta @ d.T
    ll = (s * log_expit(diff) + (n - s) * log_expit(-diff)).sum(axis=-1)
    return ll - 0.5 * prior * (theta * theta).sum(axis=-1)


def fit(n: np.ndarray, s: np.ndarray, pairs: np.ndarray, n_systems: int, *, prior: float = DEFAULT_PRIOR,
        theta0: np.ndarray | None = None, tol: float = 1e-10, max_iter: int = 100) -> tuple[np.ndarray, bool]:
    """Maximise the penalised Bradley-Terry log-likelihood for one or many replicates at once.

    ``n`` and ``s`` are (m,) or (B, m): judgments and score of the first system of each of the m ``pairs``
    (m x 2 system indices). Returns (theta with mean 0, shape (K,) or (B, K); whether every replicate
    converged). Newton: solve (H + 11^T) step = g, where H = D^T diag(n p (1-p)) D + prior I is the negative
    Hessian and g the gradient. The gradient is orthogonal to the all-ones vector (ratings are only defined
    up to a shift), so the added 11^T only makes the system solvable without moving the step off mean 0.
    A step is halved until the objective does not decrease.
    """
    single = np.ndim(n) == 1
    n = np.atleast_2d(np.asarray(n, dtype=np.float64))
    s = np.atleast_2d(np.asarray(s, dtype=np.float64))
    batch = n.shape[0]
    d = incidence(np.asarray(pairs, dtype=np.int64).reshape(-1, 2), n_systems)
    if theta0 is None:
        theta = np.zeros((batch, n_systems))
    else:
        theta = np.array(np.broadcast_to(theta0, (batch, n_systems)), dtype=np.float64)
        theta -= theta.mean(axis=1, keepdims=True)
    ones = np.ones((n_systems, n_systems))
    eye = np.eye(n_systems)
    obj = _objective(theta, n, s, d, prior)
    converged = False
    for _ in range(max_iter):
        p = expit(theta @ d.T)
        grad = (s - n * p) @ d - prior * theta
        w = n * p * (1.0 - p)
        # The tiny ridge only keeps the solve defined where a replicate has no finite MLE (w -> 0) and
        # prior = 0; it changes the path, not the fixed point (gradient zero).
        hess = np.einsum("bm,mk,ml->bkl", w, d, d) + (prior + 1e-9) * eye + ones
        step = np.linalg.solve(hess, grad[..., None])[..., 0]
        t = np.ones(batch)
        for _halving in range(40):
            candidate = theta + t[:, None] * step
            new_obj = _objective(candidate, n, s, d, prior)
            bad = ~(new_obj >= obj - 1e-12 * np.abs(obj))
            if not bad.any():
                break
            t[bad] *= 0.5
        theta, obj = candidate, new_obj
        if np.max(np.abs(t[:, None] * step)) < tol:
            converged = True
            break
    return (theta[0] if single else theta), converged


def mle_exists(n: np.ndarray, s: np.ndarray, pairs: np.ndarray, active: np.ndarray) -> bool:
    """Ford's condition on the systems in ``active``: the directed graph with an edge i -> j whenever i
    scored against j (a win or a tie) is strongly connected."""
    k = len(active)
    if k <= 1:
        return True
    where = {int(sys): i for i, sys in enumerate(active)}
    adj = np.zeros((k, k), dtype=bool)
    for (i, j), nij, sij in zip(pairs, n, s, strict=True):
        if sij > 0:
            adj[where[int(i)], where[int(j)]] = True
        if nij - sij > 0:
            adj[where[int(j)], where[int(i)]] = True
    count, _ = connected_components(adj, directed=True, connection="strong")
    return count == 1


def pair_sums(judgments: Judgments, prompt_index: np.ndarray, n_prompts: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(pairs m x 2 with first < second, per-prompt judgments P x m, per-prompt score of the first P x m)."""
    j = judgments
    if not len(j):
        return np.zeros((0, 2), dtype=np.int64), np.zeros((n_prompts, 0)), np.zeros((n_prompts, 0))
    k = j.n_systems_seen
    lo = np.minimum(j.system_a, j.system_b)
    hi = np.maximum(j.system_a, j.system_b)
    score_lo = np.where(j.system_a == lo, j.outcome, 1.0 - j.outcome)
    pair_keys, pair_index = compact(lo * k + hi)
    pairs = np.stack([pair_keys // k, pair_keys % k], axis=1)
    m = len(pairs)
    cell = prompt_index * m + pair_index
    n_pp = np.bincount(cell, minlength=n_prompts * m).reshape(n_prompts, m).astype(np.float64)
    s_pp = np.bincount(cell, weights=score_lo, minlength=n_prompts * m).reshape(n_prompts, m)
    return pairs, n_pp, s_pp


@dataclass(frozen=True)
class Rating(ToDict):
    """One system: rating on the natural (log-odds) and Elo-like scales, intervals on both, and its rank."""

    system: int
    n: int
    rating: float
    elo: float
    interval: Interval
    elo_interval: Interval
    rank: int


@dataclass(frozen=True)
class BradleyTerry(ToDict):
    """Ratings of all systems that were judged, in system-index order (systems never judged are absent)."""

    ratings: list[Rating]
    anchor: str  # "reference" (reference = 0 / 1000) or "mean" (mean = 0 / 1000)
    reference: int | None
    prior: float
    mle_exists: bool
    converged: bool
    rounds: int
    confidence: float


def rank_from_intervals(low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """rank_i = 1 + #{k : low_k > high_i}: a system is ranked below another only when the other's whole
    interval lies above its own (Chatbot Arena's leaderboard rule), so overlapping systems share ranks."""
    low = np.asarray(low, dtype=np.float64)
    high = np.asarray(high, dtype=np.float64)
    return 1 + (low[None, :] > high[:, None]).sum(axis=1)


def bradley_terry(judgments: Judgments, *, reference: int | None = None, prior: float = DEFAULT_PRIOR,
                  confidence: float = 0.95, rounds: int = DEFAULT_ROUNDS, seed: int = DEFAULT_SEED) -> BradleyTerry:
    """Bradley-Terry ratings (see the module docstring) with percentile intervals from the cluster bootstrap
    over prompts, and ranks from those intervals (:func:`rank_from_intervals`)."""
    j = judgments
    _, prompt_index = compact(j.prompt)
    n_prompts = int(prompt_index.max()) + 1 if len(prompt_index) else 0
    pairs, n_pp, s_pp = pair_sums(j, prompt_index, n_prompts)
    if not len(pairs):
        return BradleyTerry([], "mean" if reference is None else "reference", reference, prior, True, True,
                            rounds, confidence)
    # Only systems that appear are fitted; an unjudged system has no rating rather than the prior's 0.
    active, local = compact(pairs.reshape(-1))
    local_pairs = local.reshape(-1, 2)
    k = len(active)
    n_tot, s_tot = n_pp.sum(axis=0), s_pp.sum(axis=0)
    exists = mle_exists(n_tot, s_tot, pairs, active)
    if prior <= 0 and not exists:
        raise ValueError("the maximum-likelihood Bradley-Terry ratings do not exist for these judgments (a system "
                         "never scored against another group of systems); use a positive prior")
    theta, converged = fit(n_tot, s_tot, local_pairs, k, prior=prior)
    boot_theta, boot_converged = fit(resample_sums(n_pp, rounds, seed), resample_sums(s_pp, rounds, seed),
                                     local_pairs, k, prior=prior, theta0=theta)
    ref_local = None
    if reference is not None and reference in set(active.tolist()):
        ref_local = int(np.searchsorted(active, reference))
    if ref_local is not None:
        theta = theta - theta[ref_local]
        boot_theta = boot_theta - boot_theta[:, [ref_local]]
    low, high = percentile_interval(boot_theta, confidence)
    ranks = rank_from_intervals(low, high)
    n_sys = np.bincount(local_pairs.reshape(-1), weights=np.repeat(n_tot, 2), minlength=k)
    ratings = [
        Rating(
            system=int(active[i]), n=int(round(n_sys[i])), rating=float(theta[i]), elo=float(to_elo(theta[i])),
            interval=Interval(float(low[i]), float(high[i]), "cluster-bootstrap-percentile"),
            elo_interval=Interval(float(to_elo(low[i])), float(to_elo(high[i])), "cluster-bootstrap-percentile"),
            rank=int(ranks[i]),
        )
        for i in range(k)
    ]
    return BradleyTerry(
        ratings=ratings, anchor="reference" if ref_local is not None else "mean", reference=reference, prior=prior,
        mle_exists=exists, converged=bool(converged and boot_converged), rounds=rounds, confidence=confidence,
    )
