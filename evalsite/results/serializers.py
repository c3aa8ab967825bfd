"""The shape of GET /api/v1/studies/<slug>/results/, for the OpenAPI document.

The view returns StudyResults.to_dict() as it is; these serializers describe that JSON field by field (a test
walks a real response against them, so the schema cannot drift from what the API sends). Every rate is a
fraction in [0, 1]; a number that is undefined for the data (no judgments of a pair, kappa with one label)
is null, never 0.
"""
from __future__ import annotations

from rest_framework import serializers as s


def _rate(help_text: str = "", **kwargs) -> s.FloatField:
    return s.FloatField(allow_null=True, help_text=help_text, **kwargs)


class IntervalSerializer(s.Serializer):
    low = _rate()
    high = _rate()
    method = s.CharField(help_text="wilson, cluster-bootstrap-percentile, or "
                                   "one-step-newton-cluster-bootstrap-percentile (style control).")


class ProportionSerializer(s.Serializer):
    count = s.FloatField(help_text="Judgments counted (a tie counts 0.5 in `preference`).")
    n = s.IntegerField()
    rate = _rate("count / n")
    wilson = IntervalSerializer(help_text="Wilson score interval, judgments taken as independent.")
    bootstrap = IntervalSerializer(allow_null=True, help_text="Cluster bootstrap over prompts (null in the "
                                                              "per-category rows).")


class BinomialTestSerializer(s.Serializer):
    successes = s.IntegerField()
    n = s.IntegerField()
    null = s.FloatField(help_text="The proportion under the null hypothesis (0.5).")
    p_value = s.FloatField(help_text="Exact two-sided binomial p-value.")


class StrengthSerializer(s.Serializer):
    n = s.IntegerField()
    mean = s.FloatField(help_text="Mean of +strength (candidate preferred), -strength (reference preferred), "
                                  "0 (tie); strength 1 = slightly, 2 = much.")
    bootstrap = IntervalSerializer()


class HeadToHeadSerializer(s.Serializer):
    candidate = s.IntegerField(help_text="Index into `systems`.")
    candidate_name = s.CharField()
    reference = s.IntegerField()
    reference_name = s.CharField()
    n = s.IntegerField()
    wins = s.IntegerField()
    ties = s.IntegerField(help_text="Ties, both-bad included.")
    losses = s.IntegerField()
    both_bad = s.IntegerField()
    win = ProportionSerializer()
    tie = ProportionSerializer()
    loss = ProportionSerializer()
    win_or_tie = ProportionSerializer(help_text="The rate the imitation-model papers report.")
    both_bad_rate = ProportionSerializer()
    preference = ProportionSerializer(help_text="(wins + ties / 2) / n.")
    sign_test = BinomialTestSerializer(help_text="Wins among decisive (non-tie) judgments against 1/2.")
    strength = StrengthSerializer(allow_null=True, help_text="Null unless the study asked for strength.")


class RatingSerializer(s.Serializer):
    system = s.IntegerField()
    system_name = s.CharField()
    n = s.IntegerField()
    rating = s.FloatField(help_text="Log-odds scale, anchored at the reference (or the mean) = 0.")
    elo = s.FloatField(help_text="1000 + rating * 400 / ln 10.")
    interval = IntervalSerializer()
    elo_interval = IntervalSerializer()
    rank = s.IntegerField(help_text="1 + the number of systems whose whole interval lies above this one's.")


class BradleyTerrySerializer(s.Serializer):
    ratings = RatingSerializer(many=True)
    anchor = s.ChoiceField(choices=["reference", "mean"])
    reference = s.IntegerField(allow_null=True)
    reference_name = s.CharField(allow_null=True)
    prior = s.FloatField()
    mle_exists = s.BooleanField(help_text="False: some system never scored against another group; the prior "
                                          "keeps ratings finite but they lean on it.")
    converged = s.BooleanField()
    rounds = s.IntegerField()
    confidence = s.FloatField()


class StyleCoefficientSerializer(s.Serializer):
    feature = s.CharField(help_text="length, headers, lists or bold.")
    coefficient = s.FloatField(help_text="Log-odds per rms-sized normalised difference (a-b)/(a+b+1).")
    interval = IntervalSerializer()
    scale = s.FloatField(help_text="The rms of (a-b)/(a+b+1) over the judgments: the unit of the coefficient.")


class StyleAdjustedSerializer(s.Serializer):
    candidate = s.IntegerField()
    candidate_name = s.CharField()
    reference = s.IntegerField()
    reference_name = s.CharField()
    n = s.IntegerField()
    raw = s.FloatField(help_text="Raw preference rate, a tie counting half.")
    raw_interval = IntervalSerializer()
    adjusted = s.FloatField(help_text="Predicted preference when both responses have the same style.")
    adjusted_interval = IntervalSerializer()
    style_effect = s.FloatField(help_text="raw - adjusted: the part of the raw rate explained by style.")
    style_effect_interval = IntervalSerializer()
    mean_difference = s.DictField(child=s.FloatField(), help_text="Per feature, the mean of (candidate - "
                                                                  "reference) / (candidate + reference + 1).")


class StyleControlSerializer(s.Serializer):
    features = StyleCoefficientSerializer(many=True)
    ratings = RatingSerializer(many=True)
    candidates = StyleAdjustedSerializer(many=True)
    n_used = s.IntegerField()
    n_missing_style = s.IntegerField()
    dropped_features = s.ListField(child=s.CharField(), help_text="Features with no variation: not estimable.")
    prior = s.FloatField()
    converged = s.BooleanField()
    method = s.CharField()
    rounds = s.IntegerField()
    confidence = s.FloatField()


class PositionBiasSerializer(s.Serializer):
    n_decisive = s.IntegerField()
    left_chosen = s.IntegerField()
    left_share = _rate("Share of decisive choices that picked the left response; 0.5 = no bias.")
    wilson = IntervalSerializer()
    test = BinomialTestSerializer()
    n_unknown_side = s.IntegerField()


class RaterAgreementSerializer(s.Serializer):
    rater = s.IntegerField(help_text="The rater's database id.")
    pseudonym = s.CharField(help_text="As in the judgments export.")
    n_judgments = s.IntegerField()
    n_scored = s.IntegerField(help_text="Judgments whose comparison had a clear majority among the other raters.")
    agreed = s.IntegerField()
    rate = _rate()
    wilson = IntervalSerializer()


class AgreementSerializer(s.Serializer):
    n_items = s.IntegerField(help_text="Comparisons with at least two judgments.")
    n_judgments = s.IntegerField()
    percent = _rate("Pooled pairwise agreement, tie as a label.")
    n_pairs = s.IntegerField()
    percent_without_ties = _rate()
    n_pairs_without_ties = s.IntegerField()
    fleiss_kappa = _rate()
    fleiss_items = s.IntegerField()
    fleiss_raters_per_item = s.IntegerField()
    krippendorff_alpha = _rate()
    raters = RaterAgreementSerializer(many=True)


class CategoryRowSerializer(s.Serializer):
    category = s.IntegerField()
    category_name = s.CharField()
    candidate = s.IntegerField()
    candidate_name = s.CharField()
    n = s.IntegerField()
    n_prompts = s.IntegerField()
    wins = s.IntegerField()
    ties = s.IntegerField()
    losses = s.IntegerField()
    win = ProportionSerializer()
    tie = ProportionSerializer()
    loss = ProportionSerializer()
    win_or_tie = ProportionSerializer()


class SettingsSerializer(s.Serializer):
    confidence = s.FloatField()
    rounds = s.IntegerField(help_text="Cluster-bootstrap rounds (prompts resampled).")
    seed = s.IntegerField()
    prior = s.FloatField(help_text="Precision of the Gaussian prior on Bradley-Terry ratings.")


class SummarySerializer(s.Serializer):
    systems = s.ListField(child=s.CharField(), help_text="System names; the statistics refer to them by index.")
    categories = s.ListField(child=s.CharField())
    reference = s.IntegerField(allow_null=True)
    reference_name = s.CharField(allow_null=True)
    n_judgments = s.IntegerField()
    n_prompts = s.IntegerField()
    n_raters = s.IntegerField()
    head_to_head = HeadToHeadSerializer(many=True)
    bradley_terry = BradleyTerrySerializer()
    style = StyleControlSerializer(allow_null=True, help_text="Null without style features.")
    position_bias = PositionBiasSerializer()
    agreement = AgreementSerializer()
    by_category = CategoryRowSerializer(many=True)
    settings = SettingsSerializer()


class JudgmentCountsSerializer(s.Serializer):
    used = s.IntegerField(help_text="Judgments behind these numbers.")
    excluded = s.IntegerField(help_text="Non-gold judgments excluded by quality control.")
    excluded_included = s.BooleanField(help_text="Whether the excluded judgments are in `used`.")
    gold = s.IntegerField(help_text="Judgments of gold comparisons: quality checks, never counted.")
    total = s.IntegerField()


class ResultSystemSerializer(s.Serializer):
    index = s.IntegerField()
    name = s.CharField()
    role = s.ChoiceField(choices=["reference", "candidate"])
    metadata = s.DictField()


class ScalingPointSerializer(s.Serializer):
    candidate = s.IntegerField()
    name = s.CharField()
    value = s.FloatField()
    n = s.IntegerField()
    win_or_tie = _rate()
    low = _rate()
    high = _rate()
    method = s.CharField()


class ScalingSeriesSerializer(s.Serializer):
    key = s.CharField(help_text="The metadata key, e.g. params_b.")
    label = s.CharField()
    log_scale = s.BooleanField()
    points = ScalingPointSerializer(many=True)


class MeanIntervalSerializer(s.Serializer):
    n = s.IntegerField()
    mean = _rate("Mean findings per checked response.")
    interval = IntervalSerializer(help_text="Percentile bootstrap over responses.")


class SystemFactualitySerializer(s.Serializer):
    system = s.IntegerField(help_text="Index into `audits.systems`.")
    system_name = s.CharField()
    n_responses = s.IntegerField(help_text="Audited responses of this system.")
    n_checked = s.IntegerField(help_text="Responses at least one expert could check.")
    n_audits = s.IntegerField()
    major = ProportionSerializer(help_text="Checked responses with a major factual error.")
    findings = MeanIntervalSerializer()
    not_checkable = ProportionSerializer(help_text="Audited responses no expert could check.")


class ExpertAgreementSerializer(s.Serializer):
    n_items = s.IntegerField(help_text="Responses with two or more audits.")
    n_audits = s.IntegerField()
    verdict_alpha = _rate("Krippendorff's alpha (nominal) on the four verdicts.")
    verdict_percent = _rate()
    verdict_pairs = s.IntegerField()
    major_alpha = _rate("Krippendorff's alpha on 'reports a major error', checking audits only.")
    major_percent = _rate()
    major_pairs = s.IntegerField()


class ContrastSerializer(s.Serializer):
    candidate = s.IntegerField(help_text="Index into `audits.systems`.")
    candidate_name = s.CharField()
    reference = s.IntegerField()
    reference_name = s.CharField()
    category = s.IntegerField(allow_null=True, help_text="Index into `audits.categories`; null in the overall rows.")
    category_name = s.CharField(allow_null=True)
    n_comparisons = s.IntegerField(help_text="Comparisons whose two responses were both checked by experts.")
    n_judgments = s.IntegerField(help_text="Counted crowd judgments of those comparisons.")
    crowd_win_or_tie = ProportionSerializer(help_text="The crowd's win-or-tie rate for the candidate.")
    expert_win_or_tie = ProportionSerializer(help_text="Share of comparisons where the experts found the candidate "
                                                       "not factually worse (Wilson).")
    candidate_major = ProportionSerializer(help_text="Share of comparisons whose candidate response has a major "
                                                     "error.")
    reference_major = ProportionSerializer(help_text="Share of comparisons whose reference response has a major "
                                                     "error.")
    won_on_style = ProportionSerializer(help_text="Of the candidate's crowd wins, the share whose candidate "
                                                  "response has a major error.")
    crowd_win_or_tie_when_worse = ProportionSerializer(help_text="The crowd's win-or-tie rate where the experts "
                                                                 "found the candidate factually worse.")


class StyleWinsSerializer(s.Serializer):
    n_wins = s.IntegerField(help_text="Decisive crowd judgments of doubly-audited comparisons, any pair.")
    with_major = ProportionSerializer(help_text="Share that preferred a response with a major error.")
    over_accurate = ProportionSerializer(help_text="Share that preferred a response with a major error over one "
                                                   "without.")


class AuditReportSerializer(s.Serializer):
    rule = s.ChoiceField(choices=["any", "majority"], help_text="When a response counts as having a major error: "
                                                                "any checking audit reports one, or most do.")
    n_audits = s.IntegerField(help_text="Submitted audits.")
    n_responses = s.IntegerField(help_text="Audited responses.")
    systems = SystemFactualitySerializer(many=True)
    agreement = ExpertAgreementSerializer()
    contrast = ContrastSerializer(many=True, help_text="Each candidate against the reference.")
    contrast_by_category = ContrastSerializer(many=True)
    style_wins = StyleWinsSerializer()


class AuditsSerializer(s.Serializer):
    systems = s.ListField(child=s.CharField(), help_text="System names; the report refers to them by index.")
    reference = s.IntegerField(allow_null=True)
    reference_name = s.CharField(allow_null=True)
    categories = s.ListField(child=s.CharField(), help_text="Prompt categories (\"\" for prompts without one).")
    report = AuditReportSerializer()


class StudyResultsSerializer(s.Serializer):
    study = s.SlugField()
    include_excluded = s.BooleanField()
    judgments = JudgmentCountsSerializer()
    computed_at = s.DateTimeField()
    compute_seconds = s.FloatField(help_text="Time the computation took (a cached result keeps its own).")
    systems = ResultSystemSerializer(many=True)
    scaling = ScalingSeriesSerializer(many=True, help_text="Win-or-tie rate against each numeric metadata key "
                                                           "carried by at least two candidates.")
    summary = SummarySerializer()
    audits = AuditsSerializer(allow_null=True, help_text="Expert factuality audits beside the crowd's preference; "
                                                         "null when no audit has been submitted. Its crowd side "
                                                         "never counts judgments excluded by quality control.")


class ResultsQuerySerializer(s.Serializer):
    include_excluded = s.BooleanField(default=False, help_text="Put the judgments excluded by quality control "
                                                                "back in.")


class ExportQuerySerializer(s.Serializer):
    bom = s.BooleanField(default=False, help_text="Start the file with a UTF-8 byte-order mark (for Excel).")
    include_excluded = s.BooleanField(default=False, help_text="summary only: compute with excluded judgments.")
