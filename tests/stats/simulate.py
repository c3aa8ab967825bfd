"""Synthetic judgments with known truth, for the statistics tests."""
from __future__ import annotations

import numpy as np

from evalsite.stats import Judgments


def judgments(**arrays) -> Judgments:
    """Judgments from short Python lists, for hand-made cases."""
    return Judgments(**{k: (np.asarray(v) if isinstance(v, list) else v) for k, v in arrays.items()})


def candidate_vs_reference(rng: np.random.Generator, *, n_prompts: int, per_prompt: int, p_win: float,
                           p_tie: float = 0.0, prompt_sd: float = 0.0) -> Judgments:
    """System 1 (candidate) against system 0 (reference), ``per_prompt`` judgments of each prompt.

    Each prompt has its own win probability logistic(logit(p_win') + N(0, prompt_sd)) among decisive
    judgments, so judgments of one prompt are correlated; ``true_rate`` gives the population win rate.
    """
    n = n_prompts * per_prompt
    prompt = np.repeat(np.arange(n_prompts), per_prompt)
    base = np.log(p_win / (1 - p_win))
    p_prompt = 1 / (1 + np.exp(-(base + rng.normal(0, prompt_sd, n_prompts))))
    decisive_win = rng.random(n) < p_prompt[prompt]
    tie = rng.random(n) < p_tie
    outcome = np.where(tie, 0.5, decisive_win.astype(float))
    flip = rng.random(n) < 0.5
    return Judgments(
        system_a=np.where(flip, 0, 1), system_b=np.where(flip, 1, 0),
        outcome=np.where(flip, 1 - outcome, outcome), prompt=prompt,
    )


def true_win_rate(p_win: float, p_tie: float, prompt_sd: float) -> float:
    """Population win rate of :func:`candidate_vs_reference`: (1 - p_tie) E[logistic(logit p_win + N(0, sd))],
    by 80-point Gauss-Hermite quadrature (exact to ~1e-12 here)."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(80)
    base = np.log(p_win / (1 - p_win))
    mean = float((weights * (1 / (1 + np.exp(-(base + prompt_sd * nodes))))).sum() / weights.sum())
    return (1 - p_tie) * mean
