"""Many experts at once on PostgreSQL, over real connections: exactly m audits per response, none doubled."""
import threading
from collections import Counter

import pytest
from django.db import connection, connections

from raters.audits.models import Audit, AuditTarget
from raters.audits.services import audit_claim, audit_submit, audit_submit_and_claim
from tests.audits.conftest import make_audit_study, make_expert

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks (SKIP LOCKED) need PostgreSQL"),
]

EXPERTS = 24
M = 3


def test_experts_claiming_and_submitting_at_once_end_with_exactly_m_per_response():
    study, plan = make_audit_study(n_prompts=15, candidates=1, m=M)  # 30 responses, 90 audits
    experts = [make_expert(f"expert-{i}") for i in range(EXPERTS)]
    start = threading.Barrier(EXPERTS)
    accepted: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def work(expert, replay: bool, one_transaction: bool) -> None:
        try:
            start.wait()
            claim = audit_claim(plan=plan, expert=expert)
            while not claim.done:
                audit = claim.audit
                if one_transaction:
                    submission, claim = audit_submit_and_claim(plan=plan, expert=expert, audit_id=audit.pk,
                                                               verdict="no_errors")
                else:
                    submission = audit_submit(plan=plan, expert=expert, audit_id=audit.pk, verdict="no_errors")
                    claim = audit_claim(plan=plan, expert=expert)
                if replay:
                    again = audit_submit(plan=plan, expert=expert, audit_id=audit.pk, verdict="not_checkable")
                    assert again.duplicate and again.audit.verdict == "no_errors"
                with lock:
                    accepted.append(submission.audit.pk)
        except BaseException as exc:  # noqa: BLE001 - surfaced by the assertion below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work, args=(expert, i % 4 == 0, i % 2 == 0))
               for i, expert in enumerate(experts)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "an expert thread hung"
    assert errors == []

    submitted = Audit.objects.filter(status="submitted")
    per_response = Counter(submitted.values_list("target_id", flat=True))
    assert len(per_response) == 30 and set(per_response.values()) == {M}
    pairs = list(Audit.objects.values_list("target_id", "expert_id"))
    assert len(pairs) == len(set(pairs)), "an expert audited a response twice"
    assert sorted(accepted) == sorted(submitted.values_list("pk", flat=True)), "a submit was lost"
    assert set(AuditTarget.objects.values_list("load", "audits_done")) == {(M, M)}
    assert not Audit.objects.filter(status="leased").exists()


def test_two_tabs_of_one_expert_claiming_at_once_share_one_lease():
    study, plan = make_audit_study(n_prompts=5, candidates=1, m=1)
    expert = make_expert("two-tabs")
    start = threading.Barrier(2)
    got: list[int] = []
    errors: list[BaseException] = []

    def tab() -> None:
        try:
            start.wait()
            got.append(audit_claim(plan=plan, expert=expert).audit.pk)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=tab) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == [] and len(set(got)) == 1
    assert Audit.objects.filter(expert=expert).count() == 1
    assert sum(AuditTarget.objects.values_list("load", flat=True)) == 1
