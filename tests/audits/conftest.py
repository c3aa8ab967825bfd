from __future__ import annotations

import pytest
from django.conf import settings
from django.contrib.auth.models import Group

from evalsite.studies.models import Study
from raters.audits.models import AuditPlan
from raters.audits.services import audit_plan_save
from tests.factories import UserFactory, make_study_with_responses


def make_expert(username: str):
    user = UserFactory(username=username)
    group, _ = Group.objects.get_or_create(name=settings.EXPERTS_GROUP)
    user.groups.add(group)
    return user


def make_audit_study(*, n_prompts: int = 6, candidates: int = 1, m: int = 2, selection: str = "all",
                     **study_fields) -> tuple[Study, AuditPlan]:
    """A study with a reference and `candidates` candidates answering every prompt, and an audit plan."""
    study = make_study_with_responses(n_prompts=n_prompts, candidates=candidates, **study_fields)
    plan = audit_plan_save(study=study, selection=selection, audits_per_response=m).plan
    return study, plan


@pytest.fixture
def expert(db):
    return make_expert("expert-ada")


@pytest.fixture
def expert_client(client, expert):
    client.force_login(expert)
    return client
