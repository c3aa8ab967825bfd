"""evalsite.rawsql: hand-written statements must give back exactly what the ORM would, on either database."""
from datetime import timedelta

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from evalsite import rawsql
from evalsite.studies.models import Prompt, Study
from raters.models import Rater
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


@pytest.mark.django_db(transaction=True)
def test_statements_sent_together_run_in_order_and_return_the_last_row():
    study = make_live_study(n_prompts=2)
    rater = make_rater(study, "p-1")
    seen = timezone.now() + timedelta(days=1)
    with transaction.atomic():
        row = rawsql.execute_together([
            ("UPDATE raters_rater SET judgments_count = judgments_count + 5 WHERE id = %s", [rater.pk]),
            ("UPDATE raters_rater SET judgments_count = judgments_count * 2, last_seen_at = %s WHERE id = %s",
             [rawsql.prep(Rater, "last_seen_at", seen), rater.pk]),
            ("SELECT judgments_count FROM raters_rater WHERE id = %s", [rater.pk]),
        ])
    assert row == (10,)
    rater.refresh_from_db()
    assert rater.judgments_count == 10 and rater.last_seen_at == seen


@pytest.mark.django_db(transaction=True)
def test_a_failing_statement_in_a_batch_is_an_integrity_error_and_rolls_everything_back():
    study = make_live_study(n_prompts=2)
    first, second = make_rater(study, "p-1"), make_rater(study, "p-2")
    with pytest.raises(IntegrityError):
        with transaction.atomic():
            rawsql.execute_together([
                ("UPDATE raters_rater SET judgments_count = 7 WHERE id = %s", [first.pk]),
                # The same token as the first rater: the unique constraint refuses it.
                ("UPDATE raters_rater SET token = %s WHERE id = %s", [first.token, second.pk]),
            ])
    first.refresh_from_db()
    assert first.judgments_count == 0
    assert Rater.objects.filter(token=first.token).count() == 1


@pytest.mark.django_db
def test_insert_statement_returns_the_new_primary_key():
    study = StudyFactory()
    now = timezone.now()
    sql, params = rawsql.insert_statement(Prompt, {"study_id": study.pk, "external_id": "x1", "text": "Why?",
                                                   "messages": [], "category": "", "position": 1,
                                                   "created_at": now, "updated_at": now})
    (pk,) = rawsql.execute_together([(sql, params)])
    assert Prompt.objects.get(pk=pk).text == "Why?"
