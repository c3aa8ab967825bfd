"""Writes for studies: create and configure, import prompts and responses, build comparisons, change status.

Views, API views, commands and study files all call these, so every rule lives in one place. Functions are
keyword-only and named <thing>_<action>.
"""
from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q

from evalsite.studies.identity import find_model_mention
from evalsite.studies.imports import (
    DecodedFile,
    ImportRejected,
    ResponseRow,
    RowError,
    decode_upload,
    parse_prompts,
    parse_responses,
)
from evalsite.studies.models import Comparison, ImportBatch, Prompt, Response, Study, System

Progress = Callable[[int, int], None]  # (rows done, rows total)
BULK_BATCH = 500


class StudyRuleError(ValidationError):
    """A requested change breaks a study rule (wrong status, invalidates judgments, ...)."""


# --- studies --------------------------------------------------------------------------------------------

STATUS_TRANSITIONS: dict[str, set[str]] = {
    Study.Status.DRAFT: {Study.Status.LIVE, Study.Status.CLOSED},
    Study.Status.LIVE: {Study.Status.PAUSED, Study.Status.CLOSED},
    Study.Status.PAUSED: {Study.Status.LIVE, Study.Status.CLOSED},
    Study.Status.CLOSED: {Study.Status.LIVE},  # reopening is allowed; judgments are never lost
}

# Fields whose change would make judgments already collected mean something else.
JUDGMENT_SENSITIVE_FIELDS = ("scale", "pairing")


def study_create(*, slug: str, title: str, created_by=None, **fields) -> Study:
    study = Study(slug=slug, title=title, created_by=created_by, **fields)
    study.full_clean()
    try:
        with transaction.atomic():
            study.save()
    except IntegrityError:  # another request created the same slug between the check and the insert
        raise StudyRuleError(f"A study with slug {slug!r} already exists.") from None
    return study


def study_update(*, study: Study, **fields) -> Study:
    """Change settings; refuses to change the scale or pairing once judgments exist."""
    judged = study_judgment_count(study=study)
    for name, value in fields.items():
        if name in JUDGMENT_SENSITIVE_FIELDS and getattr(study, name) != value and judged:
            raise StudyRuleError(
                f"Cannot change {name} from {getattr(study, name)!r} to {value!r}: {plural(judged, 'judgment')} "
                f"{'was' if judged == 1 else 'were'} collected under the current {name}. Create a new study "
                "(another slug) for the new design."
            )
        setattr(study, name, value)
    study.full_clean()
    study.save()
    return study


def study_judgment_count(*, study: Study) -> int:
    return sum(study.comparisons.values_list("judgments_done", flat=True))


def study_set_status(*, study: Study, status: str) -> Study:
    """Launch, pause, close or reopen. Launching needs comparisons to rate."""
    if status not in Study.Status.values:
        raise StudyRuleError(f"Unknown status {status!r}: use one of {', '.join(Study.Status.values)}.")
    if status == study.status:
        return study
    if status not in STATUS_TRANSITIONS.get(study.status, set()):
        raise StudyRuleError(
            f"A {study.get_status_display().lower()} study cannot become {Study.Status(status).label.lower()}."
        )
    if status == Study.Status.LIVE and not study.comparisons.exists():
        raise StudyRuleError(
            "Cannot launch: the study has no comparisons yet. Add a reference and at least one candidate, "
            "import their responses, then build comparisons."
        )
    study.status = status
    study.save(update_fields=["status", "updated_at"])
    return study


# --- systems --------------------------------------------------------------------------------------------

def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def system_add(*, study: Study, name: str, role: str = System.Role.CANDIDATE, metadata: dict | None = None) -> System:
    system = System(study=study, name=name, role=role, metadata=metadata or {})
    _check_unique_name(system)
    _check_one_reference(system)
    system.full_clean()
    try:
        with transaction.atomic():
            system.save()
    except IntegrityError:
        raise StudyRuleError(f"The study already has a system named {name!r} or already has a reference.") from None
    return system


def system_update(*, system: System, name: str | None = None, role: str | None = None,
                  metadata: dict | None = None) -> System:
    judged = _system_judgments(system)
    if role is not None and role != system.role:
        if judged:
            raise StudyRuleError(
                f"Cannot change the role of {system.name!r}: its responses already have {plural(judged, 'judgment')}. "
                "Create a new study to compare with another reference."
            )
        system.role = role
        _check_one_reference(system)
    if name is not None:
        system.name = name
        _check_unique_name(system)
    if metadata is not None:
        system.metadata = metadata
    system.full_clean()
    try:
        with transaction.atomic():
            system.save()
    except IntegrityError:
        raise StudyRuleError(f"The study already has a system named {system.name!r} or already has a reference.") from None
    return system


def system_delete(*, system: System) -> None:
    judged = _system_judgments(system)
    if judged:
        raise StudyRuleError(
            f"Cannot remove {system.name!r}: its responses already have {plural(judged, 'judgment')}, which would be lost. "
            "Close the study instead, or create a new study without it."
        )
    with transaction.atomic():
        Comparison.objects.filter(Q(response_a__system=system) | Q(response_b__system=system)).delete()
        system.delete()


def _check_unique_name(system: System) -> None:
    if System.objects.filter(study=system.study, name=system.name).exclude(pk=system.pk).exists():
        raise StudyRuleError(f"The study already has a system named {system.name!r}; system names are unique "
                             "in a study.")


def _check_one_reference(system: System) -> None:
    if system.role != System.Role.REFERENCE:
        return
    other = System.objects.filter(study=system.study, role=System.Role.REFERENCE).exclude(pk=system.pk).first()
    if other:
        raise StudyRuleError(f"The study already has a reference system ({other.name!r}); a study has one reference.")


def _system_judgments(system: System) -> int:
    if system.pk is None:
        return 0
    return sum(
        Comparison.objects.filter(Q(response_a__system=system) | Q(response_b__system=system))
        .values_list("judgments_done", flat=True)
    )


# --- imports --------------------------------------------------------------------------------------------

@dataclass
class ImportResult:
    batch: ImportBatch
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    warnings: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        text = f"{self.batch.rows} rows from {self.batch.filename}: {self.created} added, {self.updated} replaced"
        return text + (f", {self.unchanged} unchanged" if self.unchanged else "")


def prompts_import(*, study: Study, data: bytes, filename: str, replace: bool = False, user=None,
                   source: str = "upload", progress: Progress | None = None) -> ImportResult:
    """Import a prompts file, all or nothing.

    Without `replace`, an id already in the study is an error. With it, such prompts get the file's text
    and category, unless their comparisons already have judgments and the text changed.
    """
    decoded = _decode(data, filename)
    rows, errors = parse_prompts(decoded)
    _refuse_same_file(study, ImportBatch.Kind.PROMPTS, decoded, filename, replace)
    existing = {p.external_id: p for p in Prompt.objects.filter(study=study, external_id__in=[r.external_id for r in rows])}
    judged = _judged_prompt_ids(study, existing.values()) if replace else set()
    for row in rows:
        current = existing.get(row.external_id)
        if current is None:
            continue
        if not replace:
            errors.append(RowError(row.line, "id", f"id {row.external_id!r} is already in the study; "
                                                   "import with replace to overwrite it"))
        elif current.pk in judged and (current.text != row.text or current.messages != row.messages):
            errors.append(RowError(row.line, "prompt", f"prompt {row.external_id!r} already has judgments; "
                                                       "changing its text would invalidate them"))
    if errors:
        raise ImportRejected(errors, filename=filename)

    next_position = (Prompt.objects.filter(study=study).order_by("-position").values_list("position", flat=True)
                     .first() or 0) + 1
    with _atomic_import(filename):
        batch = _new_batch(study, ImportBatch.Kind.PROMPTS, decoded, filename, len(rows), replace, user, source)
        result = ImportResult(batch=batch)
        to_create, to_update = [], []
        for row in rows:
            current = existing.get(row.external_id)
            if current is None:
                to_create.append(Prompt(study=study, external_id=row.external_id, text=row.text,
                                        messages=row.messages, category=row.category,
                                        position=next_position + len(to_create), import_batch=batch))
            elif (current.text, current.messages, current.category) != (row.text, row.messages, row.category):
                current.text, current.messages, current.category = row.text, row.messages, row.category
                current.import_batch = batch
                to_update.append(current)
            else:
                result.unchanged += 1
        _bulk_write(Prompt, to_create, to_update, ["text", "messages", "category", "import_batch", "updated_at"],
                    progress, len(rows), result.unchanged)
        result.created, result.updated = len(to_create), len(to_update)
        _finish_batch(batch, result)
    return result


def responses_import(*, study: Study, data: bytes, filename: str, replace: bool = False, user=None,
                     source: str = "upload", progress: Progress | None = None) -> ImportResult:
    """Import a responses file, all or nothing. Prompts and systems must already be in the study."""
    decoded = _decode(data, filename)
    rows, errors = parse_responses(decoded)
    _refuse_same_file(study, ImportBatch.Kind.RESPONSES, decoded, filename, replace)
    systems = {s.name: s for s in System.objects.filter(study=study)}
    prompts = dict(Prompt.objects.filter(study=study, external_id__in={r.prompt_id for r in rows})
                   .values_list("external_id", "pk"))
    existing = {
        (r.prompt_id, r.system_id): r
        for r in Response.objects.filter(prompt__study=study, prompt_id__in=prompts.values())
    }
    judged = _judged_response_ids(existing.values()) if replace else set()
    for row in rows:
        system = systems.get(row.system)
        if system is None:
            known = ", ".join(sorted(systems)) or "none yet"
            errors.append(RowError(row.line, "system", f"system {row.system!r} is not in the study (systems: {known})"))
        if row.prompt_id not in prompts:
            errors.append(RowError(row.line, "prompt_id", f"unknown prompt id {row.prompt_id!r}: import it "
                                                          "with the prompts first"))
        if system is None or row.prompt_id not in prompts:
            continue
        current = existing.get((prompts[row.prompt_id], system.pk))
        if current is None:
            continue
        if not replace:
            errors.append(RowError(row.line, "prompt_id", f"system {row.system!r} already has a response to "
                                                          f"{row.prompt_id!r}; import with replace to overwrite it"))
        elif current.pk in judged and current.text != row.text:
            errors.append(RowError(row.line, "text", f"the response of {row.system!r} to {row.prompt_id!r} already "
                                                     "has judgments; changing its text would invalidate them"))
    if errors:
        raise ImportRejected(errors, filename=filename)

    with _atomic_import(filename):
        batch = _new_batch(study, ImportBatch.Kind.RESPONSES, decoded, filename, len(rows), replace, user, source)
        result = ImportResult(batch=batch)
        to_create, to_update = [], []
        for row in rows:
            system = systems[row.system]
            prompt_pk = prompts[row.prompt_id]
            current = existing.get((prompt_pk, system.pk))
            if current is None:
                to_create.append(Response(prompt_id=prompt_pk, system=system, text=row.text, meta=row.meta,
                                          source=Response.Source.IMPORT, import_batch=batch,
                                          names_model=find_model_mention(row.text),
                                          **_provenance_from_meta(row)))
            elif (current.text, current.meta) != (row.text, row.meta):
                current.text, current.meta, current.import_batch = row.text, row.meta, batch
                current.source = Response.Source.IMPORT
                current.names_model = find_model_mention(row.text)
                for name, value in _provenance_from_meta(row).items():
                    setattr(current, name, value)
                to_update.append(current)
            else:
                result.unchanged += 1
        _bulk_write(Response, to_create, to_update,
                    ["text", "meta", "source", "import_batch", "names_model", "model_name", "sampling_params",
                     "seed", "finish_reason", "updated_at"],
                    progress, len(rows), result.unchanged)
        result.created, result.updated = len(to_create), len(to_update)
        _finish_batch(batch, result)
    return result


def _provenance_from_meta(row: ResponseRow) -> dict:
    """Lift well-known provenance keys out of a file's free `meta` into their own columns."""
    meta = row.meta
    params = meta.get("sampling_params") or meta.get("params") or {}
    seed = meta.get("seed", params.get("seed") if isinstance(params, dict) else None)
    return {
        "model_name": str(meta.get("model", ""))[:200],
        "sampling_params": params if isinstance(params, dict) else {},
        "seed": seed if isinstance(seed, int) and not isinstance(seed, bool) else None,
        "finish_reason": str(meta.get("finish_reason", ""))[:40],
    }


def _decode(data: bytes, filename: str) -> DecodedFile:
    return decode_upload(data, filename=filename, max_bytes=settings.IMPORT_MAX_BYTES)


def _refuse_same_file(study: Study, kind: str, decoded: DecodedFile, filename: str, replace: bool) -> None:
    """The same bytes imported again: one clear message instead of an "already in the study" per line."""
    if replace:
        return
    previous = ImportBatch.objects.filter(study=study, kind=kind, sha256=decoded.sha256).first()
    if previous:
        when = previous.imported_at.strftime("%Y-%m-%d %H:%M UTC")
        raise ImportRejected([RowError(None, None, f"this exact file was already imported as {previous.filename!r} "
                                                   f"on {when} (batch #{previous.pk}); to overwrite, import it "
                                                   "with replace")], filename=filename)


def _judged_prompt_ids(study: Study, prompts: Iterable[Prompt]) -> set[int]:
    return set(Comparison.objects.filter(study=study, prompt__in=list(prompts), judgments_done__gt=0)
               .values_list("prompt_id", flat=True))


def _judged_response_ids(responses: Iterable[Response]) -> set[int]:
    ids = [r.pk for r in responses]
    judged = Comparison.objects.filter(Q(response_a__in=ids) | Q(response_b__in=ids), judgments_done__gt=0)
    return {pk for pair in judged.values_list("response_a_id", "response_b_id") for pk in pair}


@contextmanager
def _atomic_import(filename: str) -> Iterator[None]:
    """One transaction; a lost race (another import inserting the same ids) becomes a clear error."""
    try:
        with transaction.atomic():
            yield
    except IntegrityError as exc:
        raise ImportRejected([RowError(None, None, "another import added the same ids at the same time; "
                                                   "nothing was stored, reload and try again")],
                             filename=filename) from exc


def _new_batch(study, kind, decoded: DecodedFile, filename, rows, replace, user, source) -> ImportBatch:
    return ImportBatch.objects.create(
        study=study, kind=kind, filename=filename[:255], sha256=decoded.sha256, size_bytes=decoded.size,
        rows=rows, replace=replace, imported_by=user if getattr(user, "is_authenticated", False) else None,
        source=source,
    )


def _finish_batch(batch: ImportBatch, result: ImportResult) -> None:
    batch.created, batch.updated, batch.unchanged = result.created, result.updated, result.unchanged
    batch.save(update_fields=["created", "updated", "unchanged"])


def _bulk_write(model, to_create: list, to_update: list, update_fields: list[str], progress: Progress | None,
                total: int, already_done: int) -> None:
    done = already_done
    if progress:
        progress(done, total)
    for chunk in _chunks(to_create, BULK_BATCH):
        model.objects.bulk_create(chunk)
        done += len(chunk)
        if progress:
            progress(done, total)
    for chunk in _chunks(to_update, BULK_BATCH):
        model.objects.bulk_update(chunk, update_fields)
        done += len(chunk)
        if progress:
            progress(done, total)


def _chunks(items: list, size: int) -> Iterable[list]:
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


# --- comparisons ----------------------------------------------------------------------------------------

@dataclass
class BuildResult:
    created: int
    removed: int
    total: int
    skipped_prompts: int  # prompts lacking a response from a system they would be compared on

    def __str__(self) -> str:
        text = f"{self.created} comparisons added, {self.total} in all"
        if self.removed:
            text += f", {self.removed} no longer in the design removed"
        if self.skipped_prompts:
            text += f"; {self.skipped_prompts} prompts skipped for missing responses"
        return text


def comparison_pairs(*, study: Study) -> list[tuple[System, System]]:
    """The system pairs the study's pairing asks for."""
    systems = list(study.systems.all())
    if study.pairing == Study.Pairing.ALL_PAIRS:
        return list(itertools.combinations(sorted(systems, key=lambda s: s.pk), 2))
    reference = next((s for s in systems if s.is_reference), None)
    if reference is None:
        return []
    return [(candidate, reference) for candidate in systems if not candidate.is_reference]


@transaction.atomic
def comparisons_build(*, study: Study) -> BuildResult:
    """Create a comparison for every prompt where both systems of a pair have a response. Idempotent.

    Comparisons that the design no longer calls for (a system's role changed, pairing changed) are removed
    when they have no judgments; with judgments they are refused, since removing them would lose data.
    """
    pairs = comparison_pairs(study=study)
    if not pairs:
        raise StudyRuleError("Nothing to compare yet: add a reference system and at least one candidate "
                             "(or two systems with all-pairs).")
    responses: dict[int, dict[int, int]] = {}
    for prompt_id, system_id, response_id in Response.objects.filter(prompt__study=study).values_list(
            "prompt_id", "system_id", "pk"):
        responses.setdefault(prompt_id, {})[system_id] = response_id
    wanted: set[tuple[int, int]] = set()
    prompt_of: dict[tuple[int, int], int] = {}
    skipped: set[int] = set()
    for prompt_id in study.prompts.values_list("pk", flat=True):
        by_system = responses.get(prompt_id, {})
        for first, second in pairs:
            if first.pk in by_system and second.pk in by_system:
                pair = tuple(sorted((by_system[first.pk], by_system[second.pk])))
                wanted.add(pair)
                prompt_of[pair] = prompt_id
            else:
                skipped.add(prompt_id)
    existing = {(a, b): (pk, done) for pk, a, b, done in study.comparisons.values_list(
        "pk", "response_a_id", "response_b_id", "judgments_done")}
    obsolete = {pair: value for pair, value in existing.items() if pair not in wanted}
    judged_obsolete = [pk for pk, done in obsolete.values() if done]
    if judged_obsolete:
        raise StudyRuleError(
            f"{len(judged_obsolete)} comparisons that the current systems and pairing no longer call for already "
            "have judgments. Restore the previous systems/pairing, or create a new study for the new design."
        )
    removed = 0
    if obsolete:
        removed, _ = Comparison.objects.filter(pk__in=[pk for pk, _ in obsolete.values()]).delete()
    new = [Comparison(study=study, prompt_id=prompt_of[pair], response_a_id=pair[0], response_b_id=pair[1])
           for pair in sorted(wanted - existing.keys())]
    Comparison.objects.bulk_create(new, batch_size=BULK_BATCH, ignore_conflicts=True)
    return BuildResult(created=len(new), removed=removed, total=study.comparisons.count(),
                       skipped_prompts=len(skipped))


def comparison_mark_gold(*, comparison: Comparison, expected: str, note: str = "") -> Comparison:
    """Make a comparison a gold question. Only before raters have seen it: judgments collected as ordinary
    ones would otherwise turn into quality checks the raters were never scored on, and the other way round."""
    if expected not in Comparison.Expected.values:
        raise StudyRuleError(f"Expected answer must be one of {', '.join(Comparison.Expected.values)}.")
    _refuse_if_seen(comparison, "marked gold" if not comparison.is_gold else "changed")
    comparison.is_gold, comparison.gold_expected, comparison.gold_note = True, expected, note
    comparison.save(update_fields=["is_gold", "gold_expected", "gold_note"])
    return comparison


def _refuse_if_seen(comparison: Comparison, what: str) -> None:
    comparison.refresh_from_db(fields=["judgments_done", "load"])
    if comparison.judgments_done or comparison.load:
        raise StudyRuleError(f"Comparison #{comparison.pk} cannot be {what}: raters have already been given it "
                             f"({plural(comparison.judgments_done, 'judgment')}). Mark another comparison instead.")


def comparison_unmark_gold(*, comparison: Comparison) -> Comparison:
    _refuse_if_seen(comparison, "unmarked")
    comparison.is_gold, comparison.gold_expected, comparison.gold_note = False, "", ""
    comparison.save(update_fields=["is_gold", "gold_expected", "gold_note"])
    return comparison


# --- API tokens -----------------------------------------------------------------------------------------

@transaction.atomic
def api_token_regenerate(*, user):
    """Give the user a fresh REST API token; the old one (if any) stops working at once."""
    from rest_framework.authtoken.models import Token

    Token.objects.filter(user=user).delete()
    return Token.objects.create(user=user)


# --- removing prompts (study files) ---------------------------------------------------------------------

def prompts_remove(*, study: Study, external_ids: Iterable[str]) -> int:
    """Remove prompts with their responses and comparisons; refused if any of their comparisons is judged.

    Used when a study file no longer lists a prompt. Returns how many prompts were removed.
    """
    pks: list[int] = []
    judged_ids: set[str] = set()
    for chunk in _chunks(list(external_ids), BULK_BATCH):  # chunks: SQLite caps the parameters of one query
        chunk_pks = list(Prompt.objects.filter(study=study, external_id__in=chunk).values_list("pk", flat=True))
        pks += chunk_pks
        judged_ids.update(Comparison.objects.filter(prompt_id__in=chunk_pks, judgments_done__gt=0)
                          .values_list("prompt__external_id", flat=True))
    judged = sorted(judged_ids)
    if judged:
        raise StudyRuleError(
            f"Cannot remove prompts {', '.join(judged[:10])}{' ...' if len(judged) > 10 else ''}: their comparisons "
            "already have judgments, which would be lost. Close the study instead, or create a new study without them."
        )
    with transaction.atomic():
        for chunk in _chunks(pks, BULK_BATCH):
            # Comparisons protect their responses, so they go first; responses follow their prompt (cascade).
            Comparison.objects.filter(prompt_id__in=chunk).delete()
            Prompt.objects.filter(pk__in=chunk).delete()
    return len(pks)


# --- generated responses (models_serving) ---------------------------------------------------------------

@dataclass(frozen=True)
class GeneratedText:
    """One response a model generated for a prompt, with what the server said about it."""

    prompt_id: int
    text: str
    finish_reason: str = ""
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    latency_ms: int | None = None
    meta: dict = field(default_factory=dict)


@dataclass
class GeneratedUpsertResult:
    written: list[int]  # prompt ids whose response is now the generated one
    kept_judged: list[int]  # prompt ids whose existing, already judged response was left alone


def response_upsert_generated(*, system: System, items: list[GeneratedText], generation_job_id: int,
                              model_name: str, sampling_params: dict, seed: int | None) -> GeneratedUpsertResult:
    """Store generated responses: one INSERT ... ON CONFLICT (prompt, system) DO UPDATE per call.

    Idempotent, so a generation chunk that runs twice (a worker died before acknowledging it) writes each
    response once. A response whose comparisons already have judgments is never overwritten: its prompt id
    comes back in `kept_judged`. Generation targets prompts without a response, so that happens only when a
    response was imported and judged while the job ran.
    """
    if not items:
        return GeneratedUpsertResult(written=[], kept_judged=[])
    prompt_ids = [item.prompt_id for item in items]
    with transaction.atomic():
        prompt_of = dict(Response.objects.filter(system=system, prompt_id__in=prompt_ids).values_list("pk", "prompt_id"))
        judged_prompts: set[int] = set()
        if prompt_of:
            # Locking the comparisons (not filtering on judgments_done in SQL) waits for a judgment being
            # recorded right now, so its count is seen before deciding to overwrite.
            compared = (Comparison.objects.select_for_update()
                        .filter(Q(response_a__in=list(prompt_of)) | Q(response_b__in=list(prompt_of)))
                        .values_list("response_a_id", "response_b_id", "judgments_done"))
            for response_a, response_b, done in compared:
                if done:
                    judged_prompts.update(prompt_of[pk] for pk in (response_a, response_b) if pk in prompt_of)
        rows = [
            Response(prompt_id=item.prompt_id, system=system, text=item.text, source=Response.Source.GENERATION,
                     import_batch=None, generation_job_id=generation_job_id, model_name=model_name[:200],
                     sampling_params=sampling_params, seed=seed, finish_reason=(item.finish_reason or "")[:40],
                     prompt_tokens=item.prompt_tokens, completion_tokens=item.completion_tokens,
                     latency_ms=item.latency_ms, meta=item.meta, names_model=find_model_mention(item.text))
            for item in items if item.prompt_id not in judged_prompts
        ]
        Response.objects.bulk_create(
            rows, update_conflicts=True, unique_fields=["prompt", "system"],
            update_fields=["text", "source", "import_batch", "generation_job_id", "model_name", "sampling_params",
                           "seed", "finish_reason", "prompt_tokens", "completion_tokens", "latency_ms", "meta",
                           "names_model", "updated_at"],
        )
    return GeneratedUpsertResult(written=[row.prompt_id for row in rows],
                                 kept_judged=[pid for pid in prompt_ids if pid in judged_prompts])
