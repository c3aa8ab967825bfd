"""`python manage.py demo`: a live demo study, a researcher login, and the URLs to open; safe to run twice."""
import re
from io import StringIO

import pytest
from django.conf import settings
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from rest_framework.authtoken.models import Token

from evalsite.studies.models import Comparison, ImportBatch, Prompt, Response, Study, System
from evalsite.studies.selectors import user_is_researcher

pytestmark = pytest.mark.django_db


def run_demo() -> str:
    out = StringIO()
    call_command("demo", stdout=out)
    return out.getvalue()


def counts() -> dict:
    return {model.__name__: model.objects.count()
            for model in (Study, System, Prompt, Response, Comparison, ImportBatch, User, Group, Token)}


def test_demo_creates_a_live_study_with_comparisons_and_a_researcher_login():
    output = run_demo()

    study = Study.objects.get()
    assert study.status == Study.Status.LIVE
    assert study.prompts.count() >= 30
    assert study.prompts.values("category").distinct().count() >= 3
    systems = {s.name: s.role for s in study.systems.all()}
    assert len(systems) >= 2
    assert sorted(systems.values()).count("reference") == 1
    for system in study.systems.all():  # every system answered every prompt
        assert Response.objects.filter(system=system).count() == study.prompts.count()
    # vs_reference: one comparison per candidate per prompt
    assert study.comparisons.count() == study.prompts.count() * (len(systems) - 1)

    user = User.objects.get(username="researcher")
    password = re.search(r'login "researcher" with password: (\S+)', output).group(1)
    assert user.check_password(password)
    assert user.is_staff
    assert user.groups.filter(name=settings.RESEARCHERS_GROUP).exists()
    assert user_is_researcher(user)
    assert study.created_by == user
    assert f"API token of researcher: {Token.objects.get(user=user).key}" in output


def test_demo_prints_the_urls_to_open():
    output = run_demo()
    base = settings.PUBLIC_BASE_URL
    slug = Study.objects.get().slug
    for url in (f"{base}/studies/", f"{base}/studies/{slug}/", f"{base}/admin/", f"{base}/api/v1/docs/"):
        assert url in output


def test_running_demo_twice_duplicates_nothing_and_says_it_is_up_to_date():
    first = run_demo()
    password = re.search(r"with password: (\S+)", first).group(1)
    before = counts()
    study_before = Study.objects.values().get()

    second = run_demo()

    assert counts() == before
    assert Study.objects.values().get() == study_before
    assert "already up to date" in second
    assert 'The researcher login "researcher" already exists; its password was not changed' in second
    assert "with password:" not in second
    assert User.objects.get(username="researcher").check_password(password)


def test_demo_keeps_the_password_of_an_existing_researcher_user():
    user = User.objects.create_user("researcher", password="chosen-by-the-admin-1")

    output = run_demo()

    user.refresh_from_db()
    assert user.check_password("chosen-by-the-admin-1")
    assert user.is_staff and user_is_researcher(user)
    assert "already exists" in output


def test_demo_prints_rater_entry_links(db, capsys):
    from django.core.management import call_command

    call_command("demo")
    out = capsys.readouterr().out
    assert "/r/" in out and "generic http" in out and "prolific http" in out
    assert "demo-imitation-vs-reference/go" not in out  # rater links use the opaque key, never the slug
