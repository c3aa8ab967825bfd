"""Everything the results page shows, from one study's judgments, in one call."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .agreement import Agreement, agreement
from .bootstrap import DEFAULT_ROUNDS, DEFAULT_SEED
from .bradley_terry import DEFAULT_PRIOR, BradleyTerry, bradley_terry
from .data import Judgments
from .headtohead import CategoryRow, HeadToHead, by_category, candidates_of, head_to_head
from .proportions import PositionBias, position_bias
from .results import ToDict, jsonable
from .style import StyleControl, style_control


@dataclass(frozen=True)
class Settings(ToDict):
    confidence: float
    rounds: int
    seed: int
    prior: float


@dataclass(frozen=True)
class StudySummary(ToDict):
    """All statistics of a study. Systems, candidates, references and categories are indices into
    ``systems`` and ``categories``; :meth:`to_dict` adds their names beside them."""

    systems: list[str]
    categories: list[str]
    reference: int | None
    n_judgments: int
    n_prompts: int
    n_raters: int
    head_to_head: list[HeadToHead]
    bradley_terry: BradleyTerry
    style: StyleControl | None
    position_bias: PositionBias
    agreement: Agreement
    by_category: list[CategoryRow]
    settings: Settings

    def to_dict(self) -> dict[str, Any]:
        data = jsonable(self)
        _add_names(data, self.systems, self.categories)
        return data


_SYSTEM_KEYS = ("system", "candidate", "reference")


def _add_names(node: Any, systems: list[str], categories: list[str]) -> None:
    if isinstance(node, list):
        for child in node:
            _add_names(child, systems, categories)
    elif isinstance(node, dict):
        for key in list(node):
            value = node[key]
            if key in _SYSTEM_KEYS and isinstance(value, int):
                node[f"{key}_name"] = systems[value]
            elif key == "category" and isinstance(value, int):
                node["category_name"] = categories[value]
            else:
                _add_names(value, systems, categories)


def summarize(judgments: Judgments, *, systems: Sequence[str], reference: int | None,
              categories: Sequence[str] | None = None, confidence: float = 0.95, rounds: int = DEFAULT_ROUNDS,
              seed: int = DEFAULT_SEED, prior: float = DEFAULT_PRIOR) -> StudySummary:
    """Head-to-head rates against ``reference`` (headtohead.py), Bradley-Terry ratings (bradley_terry.py),
    style control (style.py), position bias (proportions.py), agreement (agreement.py) and the per-category
    breakdown, with every bootstrap drawing the same ``rounds`` prompt resamples from ``seed`` (so the
    numbers are reproducible and their replicates jointly distributed).

    ``systems`` names the system indices used in the judgments; ``categories`` the category indices.
    Pass only the judgments that count (quality-control exclusions filtered out by the caller).
    """
    j = judgments
    systems = list(systems)
    categories = list(categories or [])
    if j.n_systems_seen > len(systems):
        raise ValueError(f"judgments use system index {j.n_systems_seen - 1} but only {len(systems)} systems are named")
    if reference is not None and not 0 <= reference < len(systems):
        raise ValueError(f"reference index {reference} is not one of the {len(systems)} systems")
    if j.category is not None and len(j) and int(j.category.max()) >= len(categories):
        raise ValueError(f"judgments use category index {int(j.category.max())} but only {len(categories)} "
                         "categories are named")
    if rounds < 1:
        raise ValueError(f"rounds must be at least 1, got {rounds}")
    candidates = candidates_of(j, reference) if reference is not None else []
    return StudySummary(
        systems=systems,
        categories=categories,
        reference=reference,
        n_judgments=len(j),
        n_prompts=int(len(np.unique(j.prompt))),
        n_raters=0 if j.rater is None else int(len(np.unique(j.rater))),
        head_to_head=head_to_head(j, reference, candidates=candidates, confidence=confidence, rounds=rounds,
                                  seed=seed) if reference is not None else [],
        bradley_terry=bradley_terry(j, reference=reference, prior=prior, confidence=confidence, rounds=rounds,
                                    seed=seed),
        style=style_control(j, reference=reference, prior=prior, confidence=confidence, rounds=rounds, seed=seed),
        position_bias=position_bias(j.outcome, j.left_is_a, confidence),
        agreement=agreement(j, confidence),
        by_category=by_category(j, reference, candidates=candidates, confidence=confidence)
        if reference is not None else [],
        settings=Settings(confidence=confidence, rounds=rounds, seed=seed, prior=prior),
    )
