"""Expert factuality audits and the crowd-vs-expert contrast the platform exists for.

Crowd raters reward confident style; experts checking facts are not fooled by it (Gudibande et al., "The False
Promise of Imitating Proprietary LLMs", 2023). These functions put the two side by side on the same
responses. Pure numpy/scipy, no Django: the inputs are parallel arrays.

Inputs
------
:class:`Audits`, one entry per *submitted* audit (an expert's verdict on one response):

=============  =====  ========================================================================================
array          dtype  meaning
=============  =====  ========================================================================================
response       int    the audited response (any integer ids, e.g. database keys)
system         int    index of the response's system in the caller's list of system names
verdict        int    0 = no factual errors, 1 = minor errors only, 2 = at least one major error,
                      3 = not checkable (see ``VERDICTS``)
findings       int    number of flagged spans (findings) in the audit, >= 0
expert         int    who audited; optional (any integer ids)
prompt         int    the response's prompt; optional
category       int    index of the prompt's category; optional
=============  =====  ========================================================================================

:class:`CrowdJudgments`: the crowd's counted judgments (a :class:`~evalsite.stats.data.Judgments`, whose
``system_a``/``system_b`` are the systems of the two responses) with the response ids ``response_a`` and
``response_b`` beside it, so each judgment can be joined to the audits of its two responses.

Definitions
-----------
- An audit *checks* its response unless its verdict is "not checkable". A response is *checked* when at least
  one of its audits checks it; every statistic of factual quality is over checked responses only.
- An audit *reports a major error* when its verdict is "at least one major error". The audit service refuses
  any other verdict once the audit has a major finding, so this covers every major finding and, in addition,
  an expert's judgment that minor errors add up to a major one.
- A response *has a major error* under ``rule="any"`` (the default) when at least one of its checking audits
  reports one; under ``rule="majority"`` when more than half of them do. Why "any" by default: a finding is
  evidence, not an opinion - a quoted span, what is wrong and the correction, often with a source - so a
  false alarm is rare and can be checked in the findings export, while overlooking an error is the common
  failure of human fact-checking (an expert verifies the claims they happen to doubt). The union of
  auditors therefore estimates "has a major error" with less bias than a vote, which needs several experts
  to catch the same error; the vote is offered as a sensitivity check, and with one auditor per response
  the two rules coincide.
- A response's *number of findings* is the mean over its checking audits of their findings (an expert who
  checked and found nothing contributes 0).
- The *experts' factual outcome* of a comparison, for the candidate: a win when the reference response has a
  major error and the candidate's has none, a loss in the opposite case, a tie otherwise (both or neither have
  a major error). Its *win-or-tie rate* (candidate not factually worse) is the counterpart of the crowd's.
- A comparison is *doubly audited* when both its responses are checked.
- A crowd judgment *won on style* when it preferred a response that has a major error. Over all decisive
  (non-tie) judgments of doubly-audited comparisons, the share that did is reported, and the stricter share
  that preferred a response with a major error over one without.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .agreement import item_counts, krippendorff_alpha_nominal, percent_agreement
from .bootstrap import DEFAULT_ROUNDS, DEFAULT_SEED, bootstrap_interval, percentile_interval, resample_sums
from .data import Judgments, compact
from .proportions import wilson_interval
from .results import Interval, Proportion, ToDict

VERDICTS = ("no_errors", "minor", "major", "not_checkable")
NO_ERRORS, MINOR, MAJOR, NOT_CHECKABLE = range(4)
RULES = ("any", "majority")


def _int_array(name: str, value, n: int | None) -> np.ndarray:
    arr = np.asarray(value)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        bad = ~np.isfinite(arr.astype(float)) | (arr != np.round(arr))
        if np.any(bad):
            raise ValueError(f"{name} must hold integers; position {int(np.flatnonzero(bad)[0])} does not")
    arr = arr.astype(np.int64, copy=False)
    if n is not None and len(arr) != n:
        raise ValueError(f"{name} has {len(arr)} entries but response has {n}; the arrays must be parallel")
    return arr


@dataclass(frozen=True, eq=False)
class Audits:
    response: np.ndarray
    system: np.ndarray
    verdict: np.ndarray
    findings: np.ndarray
    expert: np.ndarray | None = None
    prompt: np.ndarray | None = None
    category: np.ndarray | None = None

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        response = _int_array("response", self.response, None)
        set_(self, "response", response)
        n = len(response)
        for name in ("system", "verdict", "findings", "expert", "prompt", "category"):
            value = getattr(self, name)
            if value is not None:
                set_(self, name, _int_array(name, value, n))
        bad = (self.verdict < 0) | (self.verdict >= len(VERDICTS))
        if np.any(bad):
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(f"verdict must be 0..{len(VERDICTS) - 1} ({', '.join(VERDICTS)}); position {i} is "
                             f"{int(self.verdict[i])}")
        for name in ("system", "findings", "category"):
            value = getattr(self, name)
            if value is not None and np.any(value < 0):
                raise ValueError(f"{name} cannot be negative; position {int(np.flatnonzero(value < 0)[0])} is")

    def __len__(self) -> int:
        return len(self.response)


@dataclass(frozen=True, eq=False)
class CrowdJudgments:
    judgments: Judgments
    response_a: np.ndarray
    response_b: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.judgments)
        object.__setattr__(self, "response_a", _int_array("response_a", self.response_a, n))
        object.__setattr__(self, "response_b", _int_array("response_b", self.response_b, n))


# --- per response -----------------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class ResponseFacts:
    """One entry per audited response, sorted by response id (see the module docstring for definitions)."""

    response: np.ndarray  # ids, sorted
    system: np.ndarray
    prompt: np.ndarray  # -1 where the audits carried no prompt
    category: np.ndarray  # -1 where the audits carried no category
    n_audits: np.ndarray
    n_checked: np.ndarray  # audits that checked the response
    n_major: np.ndarray  # checking audits that reported a major error
    checked: np.ndarray  # bool
    major: np.ndarray  # bool: has a major error under the rule
    findings_mean: np.ndarray  # nan where not checked
    rule: str

    def __len__(self) -> int:
        return len(self.response)

    def lookup(self, ids: np.ndarray) -> np.ndarray:
        """Positions of ``ids`` in these facts, -1 for a response that was not audited."""
        ids = np.asarray(ids, dtype=np.int64)
        if not len(self.response):
            return np.full(len(ids), -1, dtype=np.int64)
        pos = np.clip(np.searchsorted(self.response, ids), 0, len(self.response) - 1)
        return np.where(self.response[pos] == ids, pos, -1)


def _per_response_constant(name: str, values: np.ndarray, index: np.ndarray, n: int) -> np.ndarray:
    out = np.full(n, -1, dtype=np.int64)
    out[index] = values
    if np.any(out[index] != values):
        i = int(np.flatnonzero(out[index] != values)[0])
        raise ValueError(f"audits of one response disagree on its {name} (position {i})")
    return out


def response_facts(audits: Audits, rule: str = "any") -> ResponseFacts:
    """Aggregate audits per response: checked or not, has a major error under ``rule`` (``"any"`` or
    ``"majority"``), and the mean number of findings over the checking audits."""
    if rule not in RULES:
        raise ValueError(f"rule must be one of {RULES}, got {rule!r}")
    ids, index = compact(audits.response)
    n = len(ids)
    checks = audits.verdict != NOT_CHECKABLE
    n_audits = np.bincount(index, minlength=n).astype(np.int64)
    n_checked = np.bincount(index, weights=checks, minlength=n).astype(np.int64)
    n_major = np.bincount(index, weights=checks & (audits.verdict == MAJOR), minlength=n).astype(np.int64)
    findings = np.bincount(index, weights=np.where(checks, audits.findings, 0), minlength=n)
    checked = n_checked > 0
    major = n_major >= 1 if rule == "any" else 2 * n_major > n_checked
    with np.errstate(invalid="ignore", divide="ignore"):
        findings_mean = np.where(checked, findings / n_checked, np.nan)
    return ResponseFacts(
        response=ids, system=_per_response_constant("system", audits.system, index, n),
        prompt=(np.full(n, -1, dtype=np.int64) if audits.prompt is None
                else _per_response_constant("prompt", audits.prompt, index, n)),
        category=(np.full(n, -1, dtype=np.int64) if audits.category is None
                  else _per_response_constant("category", audits.category, index, n)),
        n_audits=n_audits, n_checked=n_checked, n_major=n_major, checked=checked, major=major & checked,
        findings_mean=findings_mean, rule=rule,
    )


# --- per system -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class MeanInterval(ToDict):
    n: int
    mean: float
    interval: Interval


@dataclass(frozen=True)
class SystemFactuality(ToDict):
    """One system's audited responses. ``major`` is over checked responses; ``not_checkable`` over all."""

    system: int
    n_responses: int
    n_checked: int
    n_audits: int
    major: Proportion
    findings: MeanInterval
    not_checkable: Proportion


def mean_with_bootstrap(values: np.ndarray, confidence: float = 0.95, rounds: int = DEFAULT_ROUNDS,
                        seed: int = DEFAULT_SEED) -> MeanInterval:
    """The mean of ``values`` with a percentile bootstrap interval over the values (Efron & Tibshirani, "An
    Introduction to the Bootstrap", 1993, ch. 13), resampled with bootstrap.resample_sums.

    Why a bootstrap and not a t-interval: numbers of findings are small counts, mostly 0, skewed to the right,
    so the normal approximation behind t is poor at the sample sizes audits have; the percentile bootstrap
    follows the skew and never goes below 0. Both undercover with very few responses; with fewer than two
    values the interval is (nan, nan)."""
    values = np.asarray(values, dtype=np.float64)
    n = len(values)
    if n == 0:
        return MeanInterval(0, math.nan, Interval(math.nan, math.nan, "bootstrap-percentile"))
    mean = float(values.mean())
    if n < 2:
        return MeanInterval(n, mean, Interval(math.nan, math.nan, "bootstrap-percentile"))
    replicates = resample_sums(np.column_stack([values, np.ones(n)]), rounds, seed)
    low, high = percentile_interval(replicates[:, 0] / replicates[:, 1], confidence)
    return MeanInterval(n, mean, Interval(float(low), float(high), "bootstrap-percentile"))


def _proportion(count: float, n: int, confidence: float, bootstrap: Interval | None = None) -> Proportion:
    return Proportion(count=count, n=int(n), rate=count / n if n else math.nan,
                      wilson=wilson_interval(count, n, confidence), bootstrap=bootstrap)


def system_factuality(facts: ResponseFacts, *, confidence: float = 0.95, rounds: int = DEFAULT_ROUNDS,
                      seed: int = DEFAULT_SEED) -> list[SystemFactuality]:
    """Per system: the share of checked responses with a major error (Wilson interval: responses are the
    units, one per prompt, so independent), the mean number of findings per checked response (bootstrap
    interval, :func:`mean_with_bootstrap`) and the share of audited responses no expert could check."""
    out = []
    for system in np.unique(facts.system):
        mine = facts.system == system
        checked = mine & facts.checked
        n_resp, n_checked = int(mine.sum()), int(checked.sum())
        out.append(SystemFactuality(
            system=int(system), n_responses=n_resp, n_checked=n_checked, n_audits=int(facts.n_audits[mine].sum()),
            major=_proportion(int((checked & facts.major).sum()), n_checked, confidence),
            findings=mean_with_bootstrap(facts.findings_mean[checked], confidence, rounds, seed),
            not_checkable=_proportion(n_resp - n_checked, n_resp, confidence),
        ))
    return out


# --- expert agreement -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ExpertAgreement(ToDict):
    """Agreement between experts who audited the same response (items with at least two audits).

    ``verdict_*``: the four verdicts as nominal labels. ``major_*``: the binary label "reports a major error"
    over checking audits only. Percent agreement is the pooled share of agreeing pairs (agreement.py)."""

    n_items: int
    n_audits: int
    verdict_alpha: float
    verdict_percent: float
    verdict_pairs: int
    major_alpha: float
    major_percent: float
    major_pairs: int


def expert_agreement(audits: Audits) -> ExpertAgreement:
    """Krippendorff's alpha (nominal; agreement.krippendorff_alpha_nominal) and percent agreement, on the
    verdicts and on the major-error label. nan where no response has two audits or only one label occurs."""
    _, items = compact(audits.response)
    counts = item_counts(items, audits.verdict, len(VERDICTS))
    m_u = counts.sum(axis=1)
    multi = m_u >= 2
    pct, pairs = percent_agreement(counts)
    checks = audits.verdict != NOT_CHECKABLE
    major_counts = item_counts(items[checks], (audits.verdict[checks] == MAJOR).astype(np.int64), 2)
    major_pct, major_pairs = percent_agreement(major_counts)
    return ExpertAgreement(
        n_items=int(multi.sum()), n_audits=int(m_u[multi].sum()),
        verdict_alpha=krippendorff_alpha_nominal(counts), verdict_percent=pct, verdict_pairs=pairs,
        major_alpha=krippendorff_alpha_nominal(major_counts), major_percent=major_pct, major_pairs=major_pairs,
    )


# --- the crowd-vs-expert contrast -------------------------------------------------------------------------

@dataclass(frozen=True)
class Contrast(ToDict):
    """One candidate against the reference, on doubly-audited comparisons only.

    Crowd side (units: judgments; Wilson, and a cluster bootstrap over prompts when computed):
    ``crowd_win_or_tie`` = (candidate wins + ties) / judgments, ties including both-bad;
    ``won_on_style`` = of the candidate's crowd wins, the share where the candidate's response has a major
    error; ``crowd_win_or_tie_when_worse`` = the crowd's win-or-tie rate on the comparisons where the experts
    found the candidate factually worse (a major error in it, none in the reference).

    Expert side (units: comparisons; Wilson): ``expert_win_or_tie`` = share of comparisons where the
    candidate is not factually worse; ``candidate_major`` and ``reference_major`` = share of those
    comparisons whose candidate (reference) response has a major error.
    """

    candidate: int
    reference: int
    n_comparisons: int
    n_judgments: int
    crowd_win_or_tie: Proportion
    expert_win_or_tie: Proportion
    candidate_major: Proportion
    reference_major: Proportion
    won_on_style: Proportion
    crowd_win_or_tie_when_worse: Proportion
    category: int | None = None


@dataclass(frozen=True)
class StyleWins(ToDict):
    """All decisive crowd judgments of doubly-audited comparisons (any pair of systems).

    ``with_major`` = share whose preferred response has a major error ("won on style");
    ``over_accurate`` = share whose preferred response has a major error and the other one none."""

    n_wins: int
    with_major: Proportion
    over_accurate: Proportion


@dataclass(frozen=True)
class _Joined:
    mask: np.ndarray  # judgments whose two responses are both checked
    major_a: np.ndarray
    major_b: np.ndarray


def _join(crowd: CrowdJudgments, facts: ResponseFacts) -> _Joined:
    j = crowd.judgments
    if not len(facts):
        nothing = np.zeros(len(j), dtype=bool)
        return _Joined(mask=nothing, major_a=nothing, major_b=nothing)
    pa, pb = facts.lookup(crowd.response_a), facts.lookup(crowd.response_b)
    known = (pa >= 0) & (pb >= 0)
    for pos, systems, name in ((pa, j.system_a, "a"), (pb, j.system_b, "b")):
        clash = (pos >= 0) & (facts.system[np.maximum(pos, 0)] != systems)
        if np.any(clash):
            raise ValueError(f"judgment {int(np.flatnonzero(clash)[0])}: the system of response_{name} differs "
                             "from the system its audits give")
    mask = known & facts.checked[np.maximum(pa, 0)] & facts.checked[np.maximum(pb, 0)]
    return _Joined(mask=mask, major_a=facts.major[np.maximum(pa, 0)] & known,
                   major_b=facts.major[np.maximum(pb, 0)] & known)


def _ratio_bootstrap(numerator: np.ndarray, denominator: np.ndarray, prompt: np.ndarray, confidence: float,
                     rounds: int, seed: int) -> Interval:
    """Cluster bootstrap over prompts (bootstrap.py) of sum(numerator) / sum(denominator)."""
    _, p = compact(prompt)
    n_prompts = int(p.max()) + 1 if len(p) else 0
    if n_prompts == 0:
        return Interval(math.nan, math.nan, "cluster-bootstrap-percentile")
    sums = np.column_stack([np.bincount(p, weights=numerator, minlength=n_prompts),
                            np.bincount(p, weights=denominator, minlength=n_prompts)])
    replicates = resample_sums(sums, rounds, seed)
    with np.errstate(invalid="ignore", divide="ignore"):
        return bootstrap_interval(replicates[:, 0] / replicates[:, 1], confidence)


def _contrast_one(j: Judgments, joined: _Joined, crowd: CrowdJudgments, reference: int, candidate: int,
                  category: int | None, confidence: float, rounds: int, seed: int) -> Contrast | None:
    a_is_cand = (j.system_a == candidate) & (j.system_b == reference)
    b_is_cand = (j.system_b == candidate) & (j.system_a == reference)
    mask = joined.mask & (a_is_cand | b_is_cand)
    if category is not None:
        mask &= j.category == category
    if not mask.any():
        return None
    outcome = np.where(a_is_cand, j.outcome, 1.0 - j.outcome)[mask]
    cand_major = np.where(a_is_cand, joined.major_a, joined.major_b)[mask]
    ref_major = np.where(a_is_cand, joined.major_b, joined.major_a)[mask]
    prompt = j.prompt[mask]
    cand_response = np.where(a_is_cand, crowd.response_a, crowd.response_b)[mask]
    ref_response = np.where(a_is_cand, crowd.response_b, crowd.response_a)[mask]
    n = int(mask.sum())
    boot = rounds > 0

    win_or_tie = (outcome >= 0.5).astype(float)
    crowd_wot = _proportion(float(win_or_tie.sum()), n, confidence,
                            _ratio_bootstrap(win_or_tie, np.ones(n), prompt, confidence, rounds, seed) if boot else None)
    wins = (outcome == 1.0).astype(float)
    style = wins * cand_major
    won_on_style = _proportion(float(style.sum()), int(wins.sum()), confidence,
                               _ratio_bootstrap(style, wins, prompt, confidence, rounds, seed) if boot else None)
    worse = cand_major & ~ref_major
    when_worse = _proportion(float(win_or_tie[worse].sum()), int(worse.sum()), confidence)

    # One row per comparison (its pair of responses) for the experts' side.
    _, first = np.unique(np.column_stack([cand_response, ref_response]), axis=0, return_index=True)
    c_major, r_major = cand_major[first], ref_major[first]
    n_comp = len(first)
    expert_wot = int((~(c_major & ~r_major)).sum())
    return Contrast(
        candidate=int(candidate), reference=int(reference), n_comparisons=n_comp, n_judgments=n,
        crowd_win_or_tie=crowd_wot, expert_win_or_tie=_proportion(expert_wot, n_comp, confidence),
        candidate_major=_proportion(int(c_major.sum()), n_comp, confidence),
        reference_major=_proportion(int(r_major.sum()), n_comp, confidence),
        won_on_style=won_on_style, crowd_win_or_tie_when_worse=when_worse, category=category,
    )


def _candidates(j: Judgments, mask: np.ndarray, reference: int) -> list[int]:
    other = np.concatenate([j.system_b[mask & (j.system_a == reference)], j.system_a[mask & (j.system_b == reference)]])
    return [int(c) for c in np.unique(other)]


def crowd_vs_expert(crowd: CrowdJudgments, facts: ResponseFacts, reference: int, *, confidence: float = 0.95,
                    rounds: int = DEFAULT_ROUNDS, seed: int = DEFAULT_SEED) -> list[Contrast]:
    """Each candidate against the reference on doubly-audited comparisons (see :class:`Contrast`), in
    candidate index order; candidates with no such comparison are left out."""
    j = crowd.judgments
    joined = _join(crowd, facts)
    rows = [_contrast_one(j, joined, crowd, reference, cand, None, confidence, rounds, seed)
            for cand in _candidates(j, joined.mask, reference)]
    return [row for row in rows if row is not None]


def crowd_vs_expert_by_category(crowd: CrowdJudgments, facts: ResponseFacts, reference: int, *,
                                confidence: float = 0.95) -> list[Contrast]:
    """:func:`crowd_vs_expert` within each prompt category (``judgments.category``), Wilson intervals only: a
    category's few prompts are too few for a stable cluster bootstrap. Ordered by category, then candidate."""
    j = crowd.judgments
    if j.category is None or not len(j):
        return []
    joined = _join(crowd, facts)
    rows = []
    for category in np.unique(j.category[joined.mask]):
        for cand in _candidates(j, joined.mask & (j.category == category), reference):
            row = _contrast_one(j, joined, crowd, reference, cand, int(category), confidence, 0, 0)
            if row is not None:
                rows.append(row)
    return rows


def style_wins(crowd: CrowdJudgments, facts: ResponseFacts, *, confidence: float = 0.95,
               rounds: int = DEFAULT_ROUNDS, seed: int = DEFAULT_SEED) -> StyleWins:
    """The share of decisive crowd judgments on doubly-audited comparisons that preferred a response with a
    major error (and one with a major error over one without), with Wilson and prompt-cluster bootstrap
    intervals."""
    j = crowd.judgments
    joined = _join(crowd, facts)
    decisive = joined.mask & (j.outcome != 0.5)
    a_won = j.outcome == 1.0
    winner_major = np.where(a_won, joined.major_a, joined.major_b)[decisive].astype(float)
    loser_major = np.where(a_won, joined.major_b, joined.major_a)[decisive]
    over_accurate = winner_major * ~loser_major
    n = int(decisive.sum())
    ones, prompt = np.ones(n), j.prompt[decisive]
    boot = rounds > 0
    return StyleWins(
        n_wins=n,
        with_major=_proportion(float(winner_major.sum()), n, confidence,
                               _ratio_bootstrap(winner_major, ones, prompt, confidence, rounds, seed) if boot else None),
        over_accurate=_proportion(float(over_accurate.sum()), n, confidence,
                                  _ratio_bootstrap(over_accurate, ones, prompt, confidence, rounds, seed) if boot else None),
    )


# --- everything at once -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class AuditReport(ToDict):
    rule: str
    n_audits: int
    n_responses: int
    systems: list[SystemFactuality]
    agreement: ExpertAgreement
    contrast: list[Contrast]
    contrast_by_category: list[Contrast]
    style_wins: StyleWins


def audit_report(audits: Audits, crowd: CrowdJudgments | None, reference: int | None, *, rule: str = "any",
                 confidence: float = 0.95, rounds: int = DEFAULT_ROUNDS, seed: int = DEFAULT_SEED) -> AuditReport:
    """Every audit statistic of a study: per-system factuality, expert agreement, and (when crowd judgments
    and a reference are given) the crowd-vs-expert contrast overall and per category, and the style wins."""
    facts = response_facts(audits, rule)
    empty_crowd = CrowdJudgments(
        Judgments(system_a=np.zeros(0), system_b=np.zeros(0), outcome=np.zeros(0), prompt=np.zeros(0)),
        np.zeros(0), np.zeros(0))
    crowd = crowd if crowd is not None else empty_crowd
    return AuditReport(
        rule=rule, n_audits=len(audits), n_responses=len(facts),
        systems=system_factuality(facts, confidence=confidence, rounds=rounds, seed=seed),
        agreement=expert_agreement(audits),
        contrast=([] if reference is None else
                  crowd_vs_expert(crowd, facts, reference, confidence=confidence, rounds=rounds, seed=seed)),
        contrast_by_category=([] if reference is None else
                              crowd_vs_expert_by_category(crowd, facts, reference, confidence=confidence)),
        style_wins=style_wins(crowd, facts, confidence=confidence, rounds=rounds, seed=seed),
    )
