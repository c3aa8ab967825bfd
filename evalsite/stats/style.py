"""Style control: how much of a preference is explained by length and Markdown rather than by the system.

Model (Chatbot Arena's style control, Li et al., "Does style matter? Disentangling style and substance in
Chatbot Arena", LMSYS blog, August 2024; the same idea as AlpacaEval 2's length-controlled win rate, Dubois
et al., "Length-Controlled AlpacaEval", 2024): Bradley-Terry with style covariates, ::

    P(a preferred to b) = sigma(theta_a - theta_b + sum_f beta_f z_f)

where, for each feature f (response length, Markdown headers, list items, bold spans) with counts x_a, x_b,
the normalised difference is ``d_f = (x_a - x_b) / (x_a + x_b + 1)`` and ``z_f = d_f / rms(d_f)`` (the root
mean square over the judgments), so beta_f is the change in log-odds per typical style difference. A tie
counts as outcome 0.5 as in the plain model, and the same small Gaussian prior (bradley_terry.py) keeps the
estimate finite.

Unlike Arena we do not subtract the mean of d_f: the model has no free intercept, so a centred covariate
would shift the ratings of whichever system is usually "a" by beta * mean(d), and z = 0 would no longer
mean "equal style". Without centring, z = 0 is exactly "both responses have the same style", and the
statistic does not depend on which system was labelled a.

Style-adjusted rate of a candidate c against the reference r: ``sigma(theta_c - theta_r)`` from this model,
the predicted probability (a tie counting half) that c is preferred to r when both responses have the same
length and Markdown. Beside it is the raw preference rate (wins + ties/2) / n over the same judgments, the
quantity an unadjusted Bradley-Terry reproduces for a candidate-vs-reference design, and their difference,
the part of the raw rate explained by style. AlpacaEval 2 defines its length-controlled win rate the same
way (the GLM's prediction with the length term set to zero), averaging over instructions because its model
also has per-instruction terms; ours has none, so no averaging is needed.

Intervals: the one-step (linearised) cluster bootstrap. For each bootstrap replicate b with prompt draw
counts c_b, one Newton step from the full-data estimate ::

    params_b = params + (sum_p c_bp H_p + prior I)^-1 (sum_p c_bp g_p - prior params)

with g_p and H_p prompt p's gradient and negative Hessian at the estimate. It differs from a full refit by
O(1/P) against the O(1/sqrt(P)) bootstrap spread (Andrews, "Higher-order improvements of a computationally
attractive k-step bootstrap for extremum estimators", Econometrica 70, 2002), resamples prompts like every
other interval here (same draws, so raw minus adjusted has a joint interval), and needs only per-prompt sums:
refitting a 200k-judgment logistic model 1,000 times would not fit the 3-second budget.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import expit, log_expit

from .bootstrap import DEFAULT_ROUNDS, DEFAULT_SEED, percentile_interval, resample_sums
from .bradley_terry import DEFAULT_PRIOR, Rating, rank_from_intervals, to_elo
from .data import Judgments, compact
from .headtohead import _oriented, candidates_of
from .results import Interval, ToDict

METHOD = "one-step-newton-cluster-bootstrap-percentile"


def normalized_differences(style_a: np.ndarray, style_b: np.ndarray) -> np.ndarray:
    """(a - b) / (a + b + 1) per feature: in (-1, 1), antisymmetric, scale-free for long responses and
    defined at zero counts (Arena's choice of normalisation)."""
    return (style_a - style_b) / (style_a + style_b + 1.0)


@dataclass(frozen=True)
class StyleCoefficient(ToDict):
    """beta_f: log-odds change per rms-sized normalised difference in favour of a response."""

    feature: str
    coefficient: float
    interval: Interval
    scale: float  # rms of (a - b) / (a + b + 1), the unit of z


@dataclass(frozen=True)
class StyleAdjusted(ToDict):
    """One candidate against the reference, raw and style-adjusted (both count a tie as half a win)."""

    candidate: int
    reference: int
    n: int
    raw: float
    raw_interval: Interval
    adjusted: float
    adjusted_interval: Interval
    style_effect: float  # raw - adjusted
    style_effect_interval: Interval
    mean_difference: dict[str, float]  # mean (candidate - reference) / (candidate + reference + 1) per feature


@dataclass(frozen=True)
class StyleControl(ToDict):
    features: list[StyleCoefficient]
    ratings: list[Rating]
    candidates: list[StyleAdjusted]
    n_used: int
    n_missing_style: int
    dropped_features: list[str]  # features with no variation (every difference 0): not estimable
    prior: float
    converged: bool
    method: str
    rounds: int
    confidence: float


def _design(a, b, z, k):
    """Dense design rows x_j = (e_a - e_b, z_j): the model's log-odds is x_j . params."""
    x = np.zeros((len(a), k + z.shape[1]))
    rows = np.arange(len(a))
    x[rows, a] = 1.0
    x[rows, b] = -1.0
    x[:, k:] = z
    return x


def _fit(a, b, z, y, k, prior, tol=1e-10, max_iter=100):
    """Newton with step halving for the style-augmented model; returns (params with theta mean 0, converged).
    Same device as bradley_terry.fit: the all-ones direction of theta is added to the Hessian."""
    f = z.shape[1]
    dim = k + f
    params = np.zeros(dim)

    def objective(pr):
        eta = pr[a] - pr[b] + z @ pr[k:]
        return float((y * log_expit(eta) + (1 - y) * log_expit(-eta)).sum() - 0.5 * prior * pr @ pr)

    obj = objective(params)
    flat_pair = a * k + b
    shift = np.zeros((dim, dim))
    shift[:k, :k] = 1.0
    for _ in range(max_iter):
        eta = params[a] - params[b] + z @ params[k:]
        p = expit(eta)
        r = y - p
        w = p * (1.0 - p)
        grad = np.empty(dim)
        grad[:k] = np.bincount(a, r, k) - np.bincount(b, r, k)
        grad[k:] = z.T @ r
        grad -= prior * params
        hess = np.empty((dim, dim))
        pw = np.bincount(flat_pair, w, k * k).reshape(k, k)
        sym = pw + pw.T
        hess[:k, :k] = np.diag(sym.sum(axis=1)) - sym
        wz = w[:, None] * z
        cross = np.stack([np.bincount(a, wz[:, i], k) - np.bincount(b, wz[:, i], k) for i in range(f)], axis=1)
        hess[:k, k:] = cross
        hess[k:, :k] = cross.T
        hess[k:, k:] = z.T @ wz
        hess += (prior + 1e-9) * np.eye(dim) + shift  # tiny ridge: see bradley_terry.fit
        step = np.linalg.solve(hess, grad)
        t = 1.0
        for _halving in range(40):
            new_obj = objective(params + t * step)
            if new_obj >= obj - 1e-12 * abs(obj):
                break
            t *= 0.5
        params = params + t * step
        obj = new_obj
        if np.max(np.abs(t * step)) < tol:
            return params, True
    return params, False


def style_control(judgments: Judgments, *, reference: int | None = None, prior: float = DEFAULT_PRIOR,
                  confidence: float = 0.95, rounds: int = DEFAULT_ROUNDS, seed: int = DEFAULT_SEED) -> StyleControl | None:
    """Fit the style-controlled model (module docstring) and report style coefficients, style-controlled
    ratings and, for each candidate against ``reference``, the raw and the style-adjusted rate.
    Judgments whose style features are unknown (nan) are left out and counted. None when the judgments
    carry no style features or none is usable."""
    j = judgments
    if j.style_a is None or not len(j):
        return None
    _, prompt_index_all = compact(j.prompt)
    n_prompts = int(prompt_index_all.max()) + 1
    known = ~(np.isnan(j.style_a).any(axis=1) | np.isnan(j.style_b).any(axis=1))
    n_missing = int((~known).sum())
    if not known.any():
        return None
    used = j.subset(known)
    prompt_index = prompt_index_all[known]
    names = list(j.style_names)
    d = normalized_differences(used.style_a, used.style_b)
    scale = np.sqrt(np.mean(d * d, axis=0))
    keep = scale > 0
    if not keep.any():
        return None  # no feature differs between any two responses: there is no style to control for
    z = d[:, keep] / scale[keep]
    kept_names = [nm for nm, k in zip(names, keep, strict=True) if k]

    active, local = compact(np.concatenate([used.system_a, used.system_b]))
    k = len(active)
    a, b = local[: len(used)], local[len(used):]
    y = used.outcome
    params, converged = _fit(a, b, z, y, k, prior)

    # Per-prompt gradient and negative Hessian at the estimate, for the one-step bootstrap.
    x = _design(a, b, z, k)
    eta = x @ params
    p = expit(eta)
    r, w = y - p, p * (1.0 - p)
    dim = x.shape[1]
    g_pp = np.stack([np.bincount(prompt_index, r * x[:, u], n_prompts) for u in range(dim)], axis=1)
    iu, ju = np.triu_indices(dim)
    h_pp = np.stack([np.bincount(prompt_index, w * x[:, u] * x[:, v], n_prompts) for u, v in zip(iu, ju, strict=True)],
                    axis=1)
    # Raw preference of each candidate per prompt, on the same judgments, for the joint raw-vs-adjusted interval.
    ref_local = int(np.searchsorted(active, reference)) if reference is not None and reference in set(active.tolist()) else None
    cands = [c for c in candidates_of(used, reference) if c in set(active.tolist())] if ref_local is not None else []
    raw_pp = np.zeros((n_prompts, 2 * len(cands)))
    for ci, cand in enumerate(cands):
        mask, co = _oriented(used, reference, cand)
        raw_pp[:, 2 * ci] = np.bincount(prompt_index[mask], co[mask], n_prompts)
        raw_pp[:, 2 * ci + 1] = np.bincount(prompt_index[mask], minlength=n_prompts)
    boot = resample_sums(np.concatenate([g_pp, h_pp, raw_pp], axis=1), rounds, seed)
    g_b = boot[:, :dim] - prior * params
    h_b = np.zeros((rounds, dim, dim))
    h_b[:, iu, ju] = boot[:, dim: dim + len(iu)]
    h_b[:, ju, iu] = boot[:, dim: dim + len(iu)]
    h_b += (prior + 1e-9) * np.eye(dim)
    h_b[:, :k, :k] += 1.0  # the shift direction, as in the fit
    boot_params = params + np.linalg.solve(h_b, g_b[..., None])[..., 0]
    raw_b = boot[:, dim + len(iu):]

    theta, boot_theta = params[:k].copy(), boot_params[:, :k].copy()
    if ref_local is not None:
        theta -= theta[ref_local]
        boot_theta -= boot_theta[:, [ref_local]]
    else:
        theta -= theta.mean()
        boot_theta -= boot_theta.mean(axis=1, keepdims=True)
    low, high = percentile_interval(boot_theta, confidence)
    ranks = rank_from_intervals(low, high)
    n_sys = np.bincount(np.concatenate([a, b]), minlength=k)
    ratings = [
        Rating(system=int(active[i]), n=int(n_sys[i]), rating=float(theta[i]), elo=float(to_elo(theta[i])),
               interval=Interval(float(low[i]), float(high[i]), METHOD),
               elo_interval=Interval(float(to_elo(low[i])), float(to_elo(high[i])), METHOD), rank=int(ranks[i]))
        for i in range(k)
    ]
    beta, boot_beta = params[k:], boot_params[:, k:]
    b_low, b_high = percentile_interval(boot_beta, confidence)
    features = [
        StyleCoefficient(feature=nm, coefficient=float(beta[i]), interval=Interval(float(b_low[i]), float(b_high[i]), METHOD),
                         scale=float(scale[names.index(nm)]))
        for i, nm in enumerate(kept_names)
    ]
    adjusted = []
    for ci, cand in enumerate(cands):
        c_local = int(np.searchsorted(active, cand))
        adj = float(expit(theta[c_local]))
        adj_b = expit(boot_theta[:, c_local])
        total_score, total_n = raw_pp[:, 2 * ci].sum(), raw_pp[:, 2 * ci + 1].sum()
        raw = float(total_score / total_n)
        with np.errstate(invalid="ignore", divide="ignore"):
            raw_rep = raw_b[:, 2 * ci] / raw_b[:, 2 * ci + 1]
        mask, _ = _oriented(used, reference, cand)
        sign = np.where(used.system_a[mask] == cand, 1.0, -1.0)
        mean_diff = (d[mask] * sign[:, None]).mean(axis=0)

        def interval(rep):
            lo, hi = percentile_interval(rep, confidence)
            return Interval(float(lo), float(hi), METHOD)

        adjusted.append(StyleAdjusted(
            candidate=cand, reference=reference, n=int(total_n), raw=raw, raw_interval=interval(raw_rep),
            adjusted=adj, adjusted_interval=interval(adj_b), style_effect=raw - adj,
            style_effect_interval=interval(raw_rep - adj_b),
            mean_difference={nm: float(mean_diff[i]) for i, nm in enumerate(names)},
        ))
    return StyleControl(
        features=features, ratings=ratings, candidates=adjusted, n_used=int(known.sum()), n_missing_style=n_missing,
        dropped_features=[nm for nm, k_ in zip(names, keep, strict=True) if not k_], prior=prior,
        converged=converged, method=METHOD, rounds=rounds, confidence=confidence,
    )
