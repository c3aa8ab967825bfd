"""Many raters at once on PostgreSQL, over real connections: exactly k per comparison, nothing lost or doubled."""
import threading
from collections import Counter

import pytest
from django.db import connection, connections

from evalsite.studies.models import Comparison
from raters.models import Assignment, Judgment
from raters.services import RatingError, assignment_claim, judgment_submit, judgment_submit_and_claim
from tests.raters.conftest import make_live_study, make_rater

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks (SKIP LOCKED) need PostgreSQL"),
]

RATERS = 60
K = 3


def test_sixty_raters_claiming_and_submitting_at_once_end_with_exactly_k():
    study = make_live_study(n_prompts=40, judgments_per_comparison=K, per_rater_cap=1000, min_seconds_per_judgment=0)
    raters = [make_rater(study, f"worker-{i}") for i in range(RATERS)]
    start = threading.Barrier(RATERS)
    accepted: list[int] = []  # judgment ids the engine said it stored
    errors: list[BaseException] = []
    lock = threading.Lock()

    def rate(rater, replay: bool, one_transaction: bool) -> None:
        try:
            start.wait()
            claim = assignment_claim(rater=rater)
            while not claim.done:
                assignment = claim.assignment
                if one_transaction:  # the htmx loop: submit and lease the next in one transaction
                    submission, claim = judgment_submit_and_claim(rater=rater, assignment_id=assignment.pk,
                                                                  choice="left")
                else:  # the plain-form loop: submit, then claim on the next page load
                    submission = judgment_submit(rater=rater, assignment_id=assignment.pk, choice="left")
                    claim = assignment_claim(rater=rater)
                if replay:  # a double click: the same submit again must not record a second judgment
                    again = judgment_submit(rater=rater, assignment_id=assignment.pk, choice="right")
                    assert again.duplicate and again.judgment.pk == submission.judgment.pk
                with lock:
                    accepted.append(submission.judgment.pk)
        except RatingError as exc:  # a rater-facing refusal would be a bug here: every lease is fresh
            errors.append(exc)
        except BaseException as exc:  # noqa: BLE001 - surfaced by the assertion below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=rate, args=(rater, i % 5 == 0, i % 2 == 0)) for i, rater in enumerate(raters)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a rater thread hung"
    assert errors == []

    per_comparison = Counter(Judgment.objects.values_list("comparison_id", flat=True))
    assert len(per_comparison) == 40 and set(per_comparison.values()) == {K}
    pairs = list(Judgment.objects.values_list("comparison_id", "rater_id"))
    assert len(pairs) == len(set(pairs)), "a rater judged a comparison twice"
    assert sorted(accepted) == sorted(Judgment.objects.values_list("pk", flat=True)), "a submit was lost"
    assert set(Comparison.objects.values_list("load", "judgments_done")) == {(K, K)}
    assert not Assignment.objects.filter(status=Assignment.Status.LEASED).exists()
