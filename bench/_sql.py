"""SQL helpers shared by the benchmarks: dropping a big synthetic study fast.

The ORM's cascade collects every row in Python first, which takes minutes for a million comparisons; these
statements delete the same rows, children first, in a few seconds.
"""
from __future__ import annotations

DROP_STUDY = [
    "DELETE FROM raters_judgment WHERE rater_id IN (SELECT id FROM raters_rater WHERE study_id = %(id)s)",
    "DELETE FROM raters_assignment WHERE rater_id IN (SELECT id FROM raters_rater WHERE study_id = %(id)s)",
    "DELETE FROM raters_rater WHERE study_id = %(id)s",
    "DELETE FROM studies_comparison WHERE study_id = %(id)s",
    "DELETE FROM studies_response WHERE system_id IN (SELECT id FROM studies_system WHERE study_id = %(id)s)",
    "DELETE FROM studies_importbatch WHERE study_id = %(id)s",
    *(f"DELETE FROM models_serving_generation{table} WHERE job_id IN (SELECT j.id FROM "
      "models_serving_generationjob j JOIN studies_system s ON s.id = j.system_id WHERE s.study_id = %(id)s)"
      for table in ("failure", "chunk")),
    "UPDATE models_serving_generationjob SET retry_of_id = NULL WHERE system_id IN "
    "(SELECT id FROM studies_system WHERE study_id = %(id)s)",
    "DELETE FROM models_serving_generationjob WHERE system_id IN (SELECT id FROM studies_system WHERE study_id = %(id)s)",
    "DELETE FROM models_serving_endpoint WHERE system_id IN (SELECT id FROM studies_system WHERE study_id = %(id)s)",
    "DELETE FROM studies_prompt WHERE study_id = %(id)s",
    "DELETE FROM studies_system WHERE study_id = %(id)s",
    "DELETE FROM studies_study WHERE id = %(id)s",
]


def drop_studies(slug_prefix: str) -> None:
    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT id FROM studies_study WHERE slug LIKE %s", [slug_prefix + "%"])
        for (study_id,) in cursor.fetchall():
            for statement in DROP_STUDY:
                cursor.execute(statement, {"id": study_id})


def vacuum() -> None:
    """VACUUM ANALYZE the whole database, then CHECKPOINT: after a bulk insert or delete, dead index entries,
    missing statistics and a checkpoint still to write out the bulk's pages (its fsyncs stall commits for up
    to a second) would otherwise make the next measurements measure the clean-up instead."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
        cursor.execute("CHECKPOINT")  # needs a superuser (or pg_checkpoint), as the benchmarks' database user is
