"""The cluster bootstrap over prompts, made cheap by resampling per-prompt sums instead of judgments.

Judgments of one prompt are correlated (an easy prompt makes every rater prefer the stronger model), so
resampling single judgments understates the uncertainty. The cluster bootstrap resamples whole prompts with
replacement, keeping every judgment of a drawn prompt (Davison & Hinkley, "Bootstrap Methods and their
Application", 1997, chapter 3 on hierarchical data; Field & Welsh, "Bootstrapping clustered data", JRSS-B
69, 2007).

Every statistic here is a function of sums over judgments, so a bootstrap replicate only needs, for each
prompt, how many times it was drawn: if ``S`` (prompts x m) holds each prompt's sums of the m quantities a
statistic needs, replicate b's sums are ``c_b @ S`` with c_b the draw counts (a multinomial(P, 1/P) vector).
All statistics are computed from the same draws, so their replicates are jointly distributed (e.g. the raw
minus the style-adjusted rate has a proper interval). Intervals are percentile intervals (Efron & Tibshirani,
"An Introduction to the Bootstrap", 1993, chapter 13).
"""
from __future__ import annotations

import numpy as np

from .results import Interval

#: Bootstrap rounds used unless the caller says otherwise (the platform's minimum is 1,000).
DEFAULT_ROUNDS = 1000
DEFAULT_SEED = 20240521

# Rows of draw counts produced at once: bounds memory at ~32 MB whatever the number of prompts.
_CHUNK_CELLS = 4_000_000


def draw_counts(n_prompts: int, rounds: int, seed: int, start: int = 0, stop: int | None = None) -> np.ndarray:
    """Draw counts (rounds[start:stop] x n_prompts) of a prompt bootstrap: row b counts how often each prompt
    was drawn in P draws with replacement. Rows depend only on (n_prompts, seed, row number), so any chunk
    of rows is the same whichever way the rounds are split."""
    stop = rounds if stop is None else stop
    rows = np.empty((stop - start, n_prompts), dtype=np.float64)
    for r in range(start, stop):
        # One child stream per round keeps chunking (and so memory) from changing the numbers.
        rng = np.random.default_rng([seed, r])
        rows[r - start] = np.bincount(rng.integers(0, n_prompts, size=n_prompts), minlength=n_prompts)
    return rows


def resample_sums(per_prompt: np.ndarray, rounds: int = DEFAULT_ROUNDS, seed: int = DEFAULT_SEED) -> np.ndarray:
    """Bootstrap replicates of column sums: (rounds x m) = draw_counts(P, rounds, seed) @ per_prompt.

    ``per_prompt`` is (P x m): row p holds prompt p's sums. Works in chunks of rounds so the draw-count
    matrix never exceeds a few tens of megabytes.
    """
    per_prompt = np.asarray(per_prompt, dtype=np.float64)
    n_prompts, m = per_prompt.shape
    out = np.empty((rounds, m), dtype=np.float64)
    if n_prompts == 0:
        out.fill(0.0)
        return out
    chunk = max(1, _CHUNK_CELLS // n_prompts)
    for start in range(0, rounds, chunk):
        stop = min(rounds, start + chunk)
        out[start:stop] = draw_counts(n_prompts, rounds, seed, start, stop) @ per_prompt
    return out


def percentile_interval(replicates: np.ndarray, confidence: float = 0.95, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap interval: the (1-c)/2 and (1+c)/2 quantiles of the replicates, ignoring
    replicates where the statistic is undefined (nan, e.g. a rate in a replicate with no judgments)."""
    alpha = (1.0 - confidence) / 2.0
    replicates = np.asarray(replicates, dtype=np.float64)
    if replicates.shape[axis] == 0:
        shape = list(replicates.shape)
        del shape[axis]
        nan = np.full(shape, np.nan)
        return nan, nan.copy()
    with np.errstate(invalid="ignore"), _quiet_all_nan():
        low = np.nanquantile(replicates, alpha, axis=axis)
        high = np.nanquantile(replicates, 1.0 - alpha, axis=axis)
    return low, high


def bootstrap_interval(replicates: np.ndarray, confidence: float = 0.95) -> Interval:
    low, high = percentile_interval(replicates, confidence)
    return Interval(float(low), float(high), "cluster-bootstrap-percentile")


class _quiet_all_nan:
    """nanquantile warns on all-nan slices; an undefined interval is reported as nan, not as a warning."""

    def __enter__(self):
        import warnings

        self._ctx = warnings.catch_warnings()
        self._ctx.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *exc):
        return self._ctx.__exit__(*exc)
