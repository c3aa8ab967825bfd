"""evalsite.rawsql: hand-written statements must give back exactly what the ORM would, on either database."""
from datetime import timedelta

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from evalsite import rawsql
from evalsite.studies.models import Prompt, Study
from raters.selectors import rater_by_token
from tests.factories import PromptFactory, StudyFactory
from tests.raters.conftest import make_live_study, make_rater


@pytest.mark.django_db
def test_rows_become_the_same_instances_the_orm_builds():
    study = StudyFactory(provider_settings={"prolific_completion_url": "https://example.org/done"})
    prompt = PromptFactory(study=study, messages=[{"role": "user", "content": "Hi"}, {"role": "assistant",
                                                                                     "content": "Hello"}])
    columns = rawsql.cols(Prompt, "p")
    built = columns.build(rawsql.fetchone(f"SELECT {columns.sql} FROM studies_prompt p WHERE p.id = %s", [prompt.pk]))
    expected = Prompt.objects.get(pk=prompt.pk)
    for field in Prompt._meta.concrete_fields:
        assert getattr(built, field.attname) == getattr(expected, field.attname), field.name
    assert built.messages[1]["content"] == "Hello"  # JSON decoded, not a string
    assert built.created_at.tzinfo is not None  # an aware datetime, also from SQLite's text
    assert built._state.adding is False and built._state.db == connection.alias


@pytest.mark.django_db
def test_columns_left_out_are_deferred_and_load_when_read():
    study = StudyFactory(instructions="Read carefully.")
    columns = rawsql.cols(Study, "s", ["id", "status"])
    built = columns.build(rawsql.fetchone(f"SELECT {columns.sql} FROM studies_study s WHERE s.id = %s", [study.pk]))
    assert built.get_deferred_fields() >= {"instructions", "title"}
    assert built.instructions == "Read carefully."


@pytest.mark.django_db
def test_rater_by_token_brings_the_study_along_in_one_query():
    study = make_live_study(n_prompts=2)
    rater = make_rater(study, "p-1")
    with CaptureQueriesContext(connection) as queries:
        found = rater_by_token(rater.token)
        assert found.study.rater_key == study.rater_key
        assert found.study.judgments_per_comparison == study.judgments_per_comparison
        assert found.provider_data == rater.provider_data
    assert len(queries) == 1
    assert rater_by_token("no-such-token") is None


@pytest.mark.django_db
def test_insert_prepares_values_as_save_does_and_returns_the_new_primary_key():
    study = StudyFactory()
    now = timezone.now() - timedelta(days=3)
    pk = rawsql.insert(Prompt, {"study_id": study.pk, "external_id": "x1", "text": "Why?",
                                "messages": [{"role": "user", "content": "Why?"}], "category": "", "position": 1,
                                "created_at": now, "updated_at": now})
    prompt = Prompt.objects.get(pk=pk)
    assert prompt.messages == [{"role": "user", "content": "Why?"}] and prompt.created_at == now


@pytest.mark.django_db(transaction=True)
def test_a_refused_statement_is_djangos_integrity_error():
    study = make_live_study(n_prompts=2)
    first, second = make_rater(study, "p-1"), make_rater(study, "p-2")
    with pytest.raises(IntegrityError):
        rawsql.execute("UPDATE raters_rater SET token = %s WHERE id = %s", [first.token, second.pk])
    assert rawsql.execute("UPDATE raters_rater SET judgments_count = 3 WHERE study_id = %s", [study.pk]) == 2


@pytest.mark.django_db(transaction=True)
def test_statements_sent_together_run_in_order_and_return_the_last_row():
    study = make_live_study(n_prompts=2)
    rater = make_rater(study, "p-1")
    with transaction.atomic():
        row = rawsql.execute_together([
            ("UPDATE raters_rater SET judgments_count = judgments_count + 5 WHERE id = %s", [rater.pk]),
            ("UPDATE raters_rater SET judgments_count = judgments_count * 2 WHERE id = %s", [rater.pk]),
            ("SELECT judgments_count, token FROM raters_rater WHERE id = %s", [rater.pk]),
        ])
    assert row == (10, rater.token)


@pytest.mark.django_db(transaction=True)
def test_a_refused_statement_in_a_batch_is_an_integrity_error_and_nothing_of_the_batch_stays():
    study = make_live_study(n_prompts=2)
    first, second = make_rater(study, "p-1"), make_rater(study, "p-2")
    with pytest.raises(IntegrityError):
        with transaction.atomic():
            rawsql.execute_together([
                ("UPDATE raters_rater SET judgments_count = 7 WHERE id = %s", [first.pk]),
                ("UPDATE raters_rater SET token = %s WHERE id = %s", [first.token, second.pk]),  # unique
            ])
    first.refresh_from_db()
    assert first.judgments_count == 0
