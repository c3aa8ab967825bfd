"""The input of every statistic: a study's judgments as parallel numpy arrays, one entry per judgment.

A judgment compares two systems, called ``a`` and ``b`` here. Which one is ``a`` carries no meaning (it is
not the side shown to the rater; ``left_is_a`` says that), so every statistic below is invariant to swapping
``a`` and ``b`` in a judgment together with its outcome, side and style features.

=============  ==========  ========================================================================
array          dtype       meaning
=============  ==========  ========================================================================
system_a       int         index of system a in the caller's list of system names
system_b       int         index of system b (never equal to system_a)
outcome        float       1.0 = a preferred, 0.0 = b preferred, 0.5 = tie (both-bad is a tie)
prompt         int         the prompt (cluster) judged; any integer ids, e.g. database keys
both_bad       bool        the rater said both responses are bad (outcome must be 0.5); optional
rater          int         who judged; any integer ids; optional (needed for per-rater agreement)
left_is_a      bool        response a was shown on the left; optional (needed for position bias)
strength       float       +1/+2 toward the preferred response, 0 for a tie, nan where not asked;
                           optional
category       int         index in the caller's list of prompt categories; optional
item           int         the comparison (prompt and pair of responses) the judgment is about; any
                           integer ids; optional, derived from (prompt, unordered pair) when absent
style_a        float (n,F) style features of a's response: counts >= 0 such as length, Markdown
                           headers, list items, bold spans; nan where unknown; optional
style_b        float (n,F) the same for b's response
=============  ==========  ========================================================================

Construct it with keyword arguments; the constructor converts dtypes and refuses inconsistent input with a
``ValueError`` that names the array and the first offending position, so a bug upstream is not silently
turned into a wrong number.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: The style features the platform computes for each response, in the column order of style_a/style_b.
STYLE_FEATURES = ("length", "headers", "lists", "bold")


def _first_bad(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


@dataclass(frozen=True, eq=False)
class Judgments:
    system_a: np.ndarray
    system_b: np.ndarray
    outcome: np.ndarray
    prompt: np.ndarray
    both_bad: np.ndarray | None = None
    rater: np.ndarray | None = None
    left_is_a: np.ndarray | None = None
    strength: np.ndarray | None = None
    category: np.ndarray | None = None
    item: np.ndarray | None = None
    style_a: np.ndarray | None = None
    style_b: np.ndarray | None = None
    style_names: tuple[str, ...] = field(default=STYLE_FEATURES)

    def __post_init__(self) -> None:
        set_ = object.__setattr__  # frozen: normalise the arrays once, here
        n = None
        for name in ("system_a", "system_b", "prompt", "rater", "category", "item"):
            value = getattr(self, name)
            if value is None:
                continue
            arr = np.asarray(value)
            if arr.ndim != 1:
                raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
            if arr.size and not np.issubdtype(arr.dtype, np.integer):
                if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
                    raise ValueError(f"{name} must hold integers; position {_first_bad(arr != np.round(arr))} does not")
            set_(self, name, arr.astype(np.int64, copy=False))
        n = len(self.system_a)
        outcome = np.asarray(self.outcome, dtype=np.float64)
        set_(self, "outcome", outcome)
        for name in ("system_b", "outcome", "prompt", "both_bad", "rater", "left_is_a", "strength", "category", "item"):
            value = getattr(self, name)
            if value is not None and len(value) != n:
                raise ValueError(f"{name} has {len(value)} entries but system_a has {n}; the arrays must be parallel")
        if n and np.any(self.system_a == self.system_b):
            raise ValueError(f"judgment {_first_bad(self.system_a == self.system_b)} compares a system with itself")
        for name in ("system_a", "system_b", "category"):
            value = getattr(self, name)
            if value is not None and n and np.any(value < 0):
                raise ValueError(f"{name} must be a non-negative index; position {_first_bad(value < 0)} is negative")
        valid = (outcome == 0.0) | (outcome == 0.5) | (outcome == 1.0)
        if not np.all(valid):
            i = _first_bad(~valid)
            raise ValueError(f"outcome must be 1.0 (a wins), 0.0 (b wins) or 0.5 (tie); position {i} is {float(outcome[i])}")
        both_bad = np.zeros(n, dtype=bool) if self.both_bad is None else np.asarray(self.both_bad, dtype=bool)
        if np.any(both_bad & (outcome != 0.5)):
            raise ValueError(f"judgment {_first_bad(both_bad & (outcome != 0.5))} is both-bad but its outcome is not 0.5")
        set_(self, "both_bad", both_bad)
        if self.left_is_a is not None:
            set_(self, "left_is_a", np.asarray(self.left_is_a, dtype=bool))
        if self.strength is not None:
            strength = np.asarray(self.strength, dtype=np.float64)
            bad = ~np.isnan(strength) & ((strength < 0) | ((outcome == 0.5) & (strength != 0)))
            if np.any(bad):
                i = _first_bad(bad)
                raise ValueError(f"strength must be >= 0 toward the winner and 0 for a tie; position {i} is {float(strength[i])}")
            set_(self, "strength", strength)
        if (self.style_a is None) != (self.style_b is None):
            raise ValueError("style_a and style_b must be given together")
        if self.style_a is not None:
            names = tuple(self.style_names)
            set_(self, "style_names", names)
            for name in ("style_a", "style_b"):
                arr = np.asarray(getattr(self, name), dtype=np.float64)
                if arr.ndim == 1:
                    arr = arr[:, None]
                if arr.shape != (n, len(names)):
                    raise ValueError(f"{name} must have shape ({n}, {len(names)}) for features {names}, got {arr.shape}")
                if np.any(arr < 0):
                    row = int(np.argwhere(arr < 0)[0, 0])
                    raise ValueError(f"{name} holds counts, which cannot be negative; row {row} is")
                set_(self, name, arr)

    def __len__(self) -> int:
        return len(self.system_a)

    @property
    def n_systems_seen(self) -> int:
        """One more than the largest system index used (0 when empty)."""
        if not len(self):
            return 0
        return int(max(self.system_a.max(), self.system_b.max())) + 1

    def subset(self, mask: np.ndarray) -> Judgments:
        """The judgments where ``mask`` is true (a boolean array or integer positions)."""
        kwargs = {}
        for name in ("system_a", "system_b", "outcome", "prompt", "both_bad", "rater", "left_is_a", "strength",
                     "category", "item", "style_a", "style_b"):
            value = getattr(self, name)
            kwargs[name] = None if value is None else value[mask]
        return Judgments(**kwargs, style_names=self.style_names)

    def items(self) -> np.ndarray:
        """Comparison ids: ``item`` when given, else one id per (prompt, unordered pair of systems)."""
        if self.item is not None:
            return self.item
        if not len(self):
            return np.zeros(0, dtype=np.int64)
        k = self.n_systems_seen
        lo = np.minimum(self.system_a, self.system_b)
        hi = np.maximum(self.system_a, self.system_b)
        # One integer key per (prompt, pair): a 1-D unique is several times faster than unique over rows.
        keys = compact(self.prompt)[1] * (k * k) + lo * k + hi
        return compact(keys)[1]


def compact(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(unique ids, position of each entry in them): arbitrary integer ids as 0..k-1 indices."""
    if not len(ids):
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    uniq, inverse = np.unique(ids, return_inverse=True)
    return uniq, inverse.reshape(-1).astype(np.int64)
