"""Pure statistics over numpy arrays: no Django imports here, so every function is testable alone."""
from .agreement import Agreement, RaterAgreement, agreement, fleiss_kappa, krippendorff_alpha_nominal
from .bootstrap import DEFAULT_ROUNDS, DEFAULT_SEED, resample_sums
from .bradley_terry import (
    DEFAULT_PRIOR,
    ELO_OFFSET,
    ELO_SCALE,
    BradleyTerry,
    Rating,
    bradley_terry,
    rank_from_intervals,
)
from .data import STYLE_FEATURES, Judgments
from .headtohead import CategoryRow, HeadToHead, Strength, by_category, head_to_head
from .markdown_style import markdown_style
from .proportions import BinomialTest, PositionBias, position_bias, sign_test, wilson_interval
from .results import Interval, Proportion
from .style import StyleAdjusted, StyleCoefficient, StyleControl, style_control
from .summary import StudySummary, summarize

__all__ = [
    "DEFAULT_PRIOR", "DEFAULT_ROUNDS", "DEFAULT_SEED", "ELO_OFFSET", "ELO_SCALE", "STYLE_FEATURES",
    "Agreement", "BinomialTest", "BradleyTerry", "CategoryRow", "HeadToHead", "Interval", "Judgments",
    "PositionBias", "Proportion", "Rating", "RaterAgreement", "Strength", "StudySummary", "StyleAdjusted",
    "StyleCoefficient", "StyleControl", "agreement", "bradley_terry", "by_category", "fleiss_kappa",
    "head_to_head", "krippendorff_alpha_nominal", "markdown_style", "position_bias", "rank_from_intervals",
    "resample_sums", "sign_test", "style_control", "summarize", "wilson_interval",
]
