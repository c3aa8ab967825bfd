import pytest

from evalsite.studies.models import Study
from evalsite.studies.services import comparisons_build
from raters.services import rater_consent, rater_enter
from tests.factories import make_study_with_responses


def make_live_study(*, n_prompts: int = 10, candidates: int = 1, **fields) -> Study:
    study = make_study_with_responses(n_prompts=n_prompts, candidates=candidates, **fields)
    comparisons_build(study=study)
    Study.objects.filter(pk=study.pk).update(status=Study.Status.LIVE)
    study.refresh_from_db()
    return study


def make_rater(study: Study, external_id: str, provider: str = "prolific"):
    rater = rater_enter(study=study, provider=provider, external_id=external_id)
    return rater_consent(rater=rater)


@pytest.fixture
def live_study(db):
    return make_live_study(n_prompts=10, judgments_per_comparison=3, min_seconds_per_judgment=0)
