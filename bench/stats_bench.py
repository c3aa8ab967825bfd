"""Time `evalsite.stats.summarize` on a study of the budget's size (DESIGN.md: <= 3 s on one core).

The synthetic study: 5 systems (system 0 the reference), 2,000 prompts in 8 categories, every pair of systems
on every prompt judged by 10 of 400 raters = 200,000 judgments, with ties, both-bad, strength, sides, and four
style features whose length difference moves the preference. `summarize` runs with 1,000 bootstrap rounds;
the script prints each run's wall time and the median of the runs.

Run it on one core, BLAS single-threaded (the budget's conditions):

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 \
        taskset -c 0 .venv/bin/python bench/stats_bench.py

Needs only numpy and scipy (no database, no Django).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from evalsite.stats import Judgments, summarize  # noqa: E402

BUDGET_SECONDS = 3.0


def synthetic_study(n_prompts: int = 2000, judgments_per_pair: int = 10, n_raters: int = 400, seed: int = 7) -> Judgments:
    rng = np.random.default_rng(seed)
    quality = np.array([0.0, -0.2, 0.1, -0.5, 0.3])
    k = len(quality)
    mean_len = np.array([300.0, 420.0, 350.0, 250.0, 500.0])
    pa, pb = np.triu_indices(k, 1)
    per_prompt = len(pa) * judgments_per_pair
    n = n_prompts * per_prompt
    prompt = np.repeat(np.arange(n_prompts), per_prompt)
    pair = np.tile(np.repeat(np.arange(len(pa)), judgments_per_pair), n_prompts)
    flip = rng.random(n) < 0.5  # which system of the pair is "a" varies, as it does in the platform
    a = np.where(flip, pb[pair], pa[pair])
    b = np.where(flip, pa[pair], pb[pair])
    # One response per (prompt, system): every judgment of that response sees the same style.
    length = rng.lognormal(np.log(mean_len), 0.5, size=(n_prompts, k))
    headers = rng.poisson(1.0 + mean_len / 300.0, size=(n_prompts, k)).astype(float)
    lists = rng.poisson(3.0, size=(n_prompts, k)).astype(float)
    bold = rng.poisson(1.5, size=(n_prompts, k)).astype(float)
    style = np.stack([length, headers, lists, bold], axis=2)
    style_a, style_b = style[prompt, a], style[prompt, b]
    d_len = (style_a[:, 0] - style_b[:, 0]) / (style_a[:, 0] + style_b[:, 0] + 1)
    prompt_effect = rng.normal(0, 0.5, size=(n_prompts, len(pa)))[prompt, pair]
    p_a = 1 / (1 + np.exp(-(quality[a] - quality[b] + 1.0 * d_len + np.where(flip, -1, 1) * prompt_effect)))
    outcome = (rng.random(n) < p_a).astype(float)
    tie = rng.random(n) < 0.15
    outcome[tie] = 0.5
    both_bad = tie & (rng.random(n) < 0.2)
    strength = np.where(tie, 0.0, rng.integers(1, 3, size=n).astype(float))
    strength[rng.random(n) < 0.1] = np.nan
    return Judgments(
        system_a=a, system_b=b, outcome=outcome, prompt=prompt, both_bad=both_bad,
        rater=rng.integers(0, n_raters, size=n), left_is_a=rng.random(n) < 0.5, strength=strength,
        category=(np.arange(n_prompts) % 8)[prompt], style_a=style_a, style_b=style_b,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    judgments = synthetic_study(n_prompts=args.prompts)
    systems = ["reference", "cand-1", "cand-2", "cand-3", "cand-4"]
    categories = [f"category-{i}" for i in range(8)]
    affinity = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else "?"
    threads = {v: os.environ.get(v, "unset") for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    print(f"judgments={len(judgments)} systems={len(systems)} prompts={args.prompts} rounds={args.rounds} "
          f"cpus={affinity} {threads}")
    times = []
    for i in range(args.repeat):
        start = time.perf_counter()
        result = summarize(judgments, systems=systems, reference=0, categories=categories, rounds=args.rounds)
        times.append(time.perf_counter() - start)
        print(f"run {i + 1}: {times[-1]:.3f} s")
    median = statistics.median(times)
    verdict = "within" if median <= BUDGET_SECONDS else "OVER"
    print(f"median {median:.3f} s ({verdict} the {BUDGET_SECONDS:.0f} s budget)")
    first = result.head_to_head[0]
    print(f"e.g. {systems[first.candidate]} vs reference: win_or_tie {first.win_or_tie.rate:.3f} "
          f"[{first.win_or_tie.bootstrap.low:.3f}, {first.win_or_tie.bootstrap.high:.3f}]; "
          f"length coefficient {result.style.features[0].coefficient:.3f}")


if __name__ == "__main__":
    main()
