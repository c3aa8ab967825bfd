"""Study rules: one reference, comparisons built once per pair, status changes, judged data protected."""
import pytest
from django.db import IntegrityError, transaction

from evalsite.studies.models import Comparison, Study, System
from evalsite.studies.selectors import study_coverage, study_overview
from evalsite.studies.services import (
    StudyRuleError,
    comparison_mark_gold,
    comparisons_build,
    study_set_status,
    study_update,
    system_add,
    system_delete,
    system_update,
)
from tests.factories import PromptFactory, ResponseFactory, SystemFactory, make_study_with_responses

pytestmark = pytest.mark.django_db


def test_vs_reference_builds_one_comparison_per_candidate_and_prompt():
    study = make_study_with_responses(n_prompts=4, candidates=2)
    result = comparisons_build(study=study)
    assert (result.created, result.total, result.skipped_prompts) == (8, 8, 0)
    for comparison in study.comparisons.select_related("response_a__system", "response_b__system"):
        roles = {comparison.response_a.system.role, comparison.response_b.system.role}
        assert roles == {"reference", "candidate"}
        assert comparison.response_a.prompt_id == comparison.response_b.prompt_id == comparison.prompt_id


def test_building_twice_changes_nothing():
    study = make_study_with_responses(n_prompts=3)
    comparisons_build(study=study)
    before = list(study.comparisons.values_list("pk", flat=True))
    result = comparisons_build(study=study)
    assert (result.created, result.removed) == (0, 0)
    assert list(study.comparisons.values_list("pk", flat=True)) == before


def test_all_pairs_compares_every_pair_of_systems():
    study = make_study_with_responses(n_prompts=2, candidates=2, pairing=Study.Pairing.ALL_PAIRS)
    assert comparisons_build(study=study).total == 2 * 3


def test_prompts_missing_a_response_are_skipped_and_counted():
    study = make_study_with_responses(n_prompts=2)
    PromptFactory(study=study, external_id="unanswered")
    result = comparisons_build(study=study)
    assert (result.total, result.skipped_prompts) == (2, 1)
    coverage = {row.system.name: row for row in study_coverage(study=study)}
    assert coverage["reference"].missing_ids == ["unanswered"] and coverage["reference"].missing == 1
    assert round(coverage["candidate-1"].percent) == 67


def test_build_without_a_reference_says_what_is_missing():
    study = SystemFactory(name="lonely").study
    with pytest.raises(StudyRuleError, match="add a reference system"):
        comparisons_build(study=study)


def test_switching_pairing_removes_unjudged_comparisons_but_refuses_judged_ones():
    study = make_study_with_responses(n_prompts=2, candidates=2, pairing=Study.Pairing.ALL_PAIRS)
    comparisons_build(study=study)
    study_update(study=study, pairing=Study.Pairing.VS_REFERENCE)
    result = comparisons_build(study=study)
    assert (result.removed, result.total) == (2, 4)
    study_update(study=study, pairing=Study.Pairing.ALL_PAIRS)
    comparisons_build(study=study)
    candidate_pair = study.comparisons.filter(response_a__system__role="candidate",
                                              response_b__system__role="candidate").first()
    Comparison.objects.filter(pk=candidate_pair.pk).update(judgments_done=1)
    with pytest.raises(StudyRuleError, match="1 judgment was collected under the current pairing"):
        study_update(study=study, pairing=Study.Pairing.VS_REFERENCE)
    study.pairing = Study.Pairing.VS_REFERENCE  # even if the field were changed behind the service's back
    with pytest.raises(StudyRuleError, match="already have judgments"):
        comparisons_build(study=study)
    assert study.comparisons.count() == 6


def test_a_study_has_one_reference_enforced_by_the_database():
    study = SystemFactory(name="chatgpt", role=System.Role.REFERENCE).study
    with pytest.raises(StudyRuleError, match="already has a reference system"):
        system_add(study=study, name="gpt4", role=System.Role.REFERENCE)
    with pytest.raises(IntegrityError), transaction.atomic():
        System.objects.create(study=study, name="gpt4", role=System.Role.REFERENCE)


def test_duplicate_system_name_is_refused():
    study = SystemFactory(name="koala").study
    with pytest.raises(StudyRuleError, match="already has a system named 'koala'"):
        system_add(study=study, name="koala")


def test_comparison_pairs_are_unique_and_canonical_in_the_database():
    study = make_study_with_responses(n_prompts=1)
    comparisons_build(study=study)
    comparison = study.comparisons.get()
    with pytest.raises(IntegrityError), transaction.atomic():
        Comparison.objects.create(study=study, prompt=comparison.prompt, response_a=comparison.response_b,
                                  response_b=comparison.response_a)
    with pytest.raises(IntegrityError), transaction.atomic():
        Comparison.objects.create(study=study, prompt=comparison.prompt, response_a=comparison.response_a,
                                  response_b=comparison.response_b)


def test_gold_comparison_needs_an_expected_answer():
    study = make_study_with_responses(n_prompts=1)
    comparisons_build(study=study)
    comparison = study.comparisons.get()
    with pytest.raises(IntegrityError), transaction.atomic():
        Comparison.objects.filter(pk=comparison.pk).update(is_gold=True)
    comparison_mark_gold(comparison=comparison, expected="a", note="B invents a date")
    assert study_overview(study=study).gold_comparisons == 1


def test_launch_needs_comparisons_and_status_moves_follow_the_rules():
    study = make_study_with_responses(n_prompts=1)
    with pytest.raises(StudyRuleError, match="no comparisons yet"):
        study_set_status(study=study, status=Study.Status.LIVE)
    comparisons_build(study=study)
    study_set_status(study=study, status=Study.Status.LIVE)
    study_set_status(study=study, status=Study.Status.PAUSED)
    with pytest.raises(StudyRuleError, match="A paused study cannot become draft"):
        study_set_status(study=study, status=Study.Status.DRAFT)
    study_set_status(study=study, status=Study.Status.CLOSED)
    assert Study.objects.get(pk=study.pk).status == "closed"


def test_judged_design_cannot_change_under_the_raters():
    study = make_study_with_responses(n_prompts=2)
    comparisons_build(study=study)
    study.comparisons.update(judgments_done=3)
    with pytest.raises(StudyRuleError, match="6 judgments were collected under the current scale"):
        study_update(study=study, scale=Study.Scale.AB_TIE_STRENGTH)
    candidate = study.systems.get(name="candidate-1")
    with pytest.raises(StudyRuleError, match="Cannot remove 'candidate-1'"):
        system_delete(system=candidate)
    with pytest.raises(StudyRuleError, match="Cannot change the role"):
        system_update(system=candidate, role=System.Role.REFERENCE)
    study_update(study=study, title="Renamed", judgments_per_comparison=5)  # harmless changes pass
    assert Study.objects.get(pk=study.pk).scale == Study.Scale.AB_TIE


def test_deleting_an_unjudged_system_removes_its_comparisons():
    study = make_study_with_responses(n_prompts=2, candidates=2)
    comparisons_build(study=study)
    system_delete(system=study.systems.get(name="candidate-2"))
    assert study.comparisons.count() == 2 and not study.systems.filter(name="candidate-2").exists()


def test_response_is_unique_per_prompt_and_system():
    response = ResponseFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        ResponseFactory(prompt=response.prompt, system=response.system)


def test_a_study_with_comparisons_and_judgments_can_be_deleted():
    from raters.services import assignment_claim, judgment_submit
    from tests.raters.conftest import make_live_study, make_rater

    study = make_live_study(n_prompts=2, min_seconds_per_judgment=0)
    rater = make_rater(study, "w")
    judgment_submit(rater=rater, assignment_id=assignment_claim(rater=rater).assignment.pk, choice="left")
    study.delete()
    assert not Study.objects.exists() and not Comparison.objects.exists()


def test_a_compared_response_cannot_be_deleted_on_its_own():
    from django.db.models import RestrictedError

    study = make_study_with_responses(n_prompts=1)
    comparisons_build(study=study)
    with pytest.raises(RestrictedError):
        study.comparisons.get().response_a.delete()
