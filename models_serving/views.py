"""Researcher pages for generation, under /studies/<slug>/generation/.

Endpoints (add, edit, check), starting a job for a system, a job's live progress (htmx polls the progress
panel every two seconds while the job is active), its failed prompts, cancel, retry failed, resume. Thin:
forms validate, models_serving.services writes, models_serving.selectors reads. Everything works as plain
HTML forms; htmx only refreshes the progress panel and shows a check's answer in place.
"""
from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from evalsite.celery import app as celery_app
from evalsite.studies.decorators import researcher_required
from evalsite.studies.forms import add_service_error
from evalsite.studies.htmx import wants_partial
from evalsite.studies.models import Study, System
from models_serving import selectors, services
from models_serving.forms import EndpointForm
from models_serving.models import Endpoint, GenerationJob

FAILURES_SHOWN = 200
POLL_SECONDS = 2


def workers_available() -> bool:
    """Whether jobs can go to Celery workers. Without a broker tasks would run inside the web request."""
    return not celery_app.conf.task_always_eager


def _study_or_404(slug: str) -> Study:
    return get_object_or_404(Study, slug=slug)


def _overview_url(study: Study) -> str:
    return reverse("generation:overview", args=[study.slug])


def _job_url(job: GenerationJob) -> str:
    return reverse("generation:job", args=[job.system.study.slug, job.pk])



# --- the overview ---------------------------------------------------------------------------------------

@require_GET
@researcher_required
def generation_overview(request: HttpRequest, slug: str) -> HttpResponse:
    study = _study_or_404(slug)
    context = {
        "study": study,
        "rows": selectors.study_generation(study=study),
        "jobs": selectors.study_jobs(study=study),
        "workers": workers_available(),
    }
    return render(request, "models_serving/generation.html", context)


# --- endpoints ------------------------------------------------------------------------------------------

def _system(study: Study, system_pk: int) -> System:
    return get_object_or_404(System.objects.select_related("study"), pk=system_pk, study=study)


@require_http_methods(["GET", "POST"])
@researcher_required
def endpoint_edit(request: HttpRequest, slug: str, system_pk: int) -> HttpResponse:
    study = _study_or_404(slug)
    system = _system(study, system_pk)
    endpoint = Endpoint.objects.filter(system=system).first()
    form = EndpointForm.for_endpoint(endpoint, request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            services.endpoint_save(system=system, **form.cleaned_data)
        except ValidationError as exc:
            add_service_error(form, exc)
        else:
            messages.success(request, f"Endpoint of {system.name} saved. Use Check to see whether the server "
                                      "serves the model.")
            return redirect(_overview_url(study))
    context = {"study": study, "system": system, "endpoint": endpoint, "form": form}
    return render(request, "models_serving/endpoint_form.html", context)


@require_POST
@researcher_required
def endpoint_delete(request: HttpRequest, slug: str, system_pk: int) -> HttpResponse:
    study = _study_or_404(slug)
    system = _system(study, system_pk)
    endpoint = get_object_or_404(Endpoint, system=system)
    services.endpoint_delete(endpoint=endpoint)
    messages.success(request, f"Endpoint of {system.name} removed; its responses and past jobs are kept.")
    return redirect(_overview_url(study))


@require_POST
@researcher_required
def endpoint_check(request: HttpRequest, slug: str, system_pk: int) -> HttpResponse:
    study = _study_or_404(slug)
    system = _system(study, system_pk)
    endpoint = get_object_or_404(Endpoint, system=system)
    check = services.endpoint_check(endpoint=endpoint)
    if request.htmx:
        return render(request, "models_serving/partials/check_result.html", {"system": system, "check": check})
    (messages.success if check.ok else messages.error)(request, f"{system.name}: {check.message}")
    return redirect(_overview_url(study))


# --- jobs -----------------------------------------------------------------------------------------------

@require_POST
@researcher_required
def generation_start(request: HttpRequest, slug: str, system_pk: int) -> HttpResponse:
    study = _study_or_404(slug)
    system = _system(study, system_pk)
    if not workers_available():
        messages.error(request, "No task queue is configured (CELERY_BROKER_URL), so no worker can run the job. "
                                f"Run it in a terminal: python manage.py generate {study.slug} {system.name}")
        return redirect(_overview_url(study))
    try:
        with transaction.atomic():
            job = services.generation_job_start(system=system, user=request.user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect(_overview_url(study))
    messages.success(request, f"Job #{job.pk} queued: {job.total} prompts for {system.name}.")
    return redirect(_job_url(job))


def _job_or_404(study: Study, pk: int) -> GenerationJob:
    return get_object_or_404(GenerationJob.objects.select_related("system__study"), pk=pk, system__study=study)


@require_GET
@researcher_required
def job_detail(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    study = _study_or_404(slug)
    job = _job_or_404(study, pk)
    context = {"study": study, "job": job, "progress": selectors.job_progress(job=job), "poll": POLL_SECONDS}
    if wants_partial(request):
        response = render(request, "models_serving/partials/job_progress.html", context)
        if not job.is_active and request.GET.get("polling"):
            # The job ended while the page watched it: reload once for the final state and failed prompts.
            response["HX-Refresh"] = "true"
    else:
        failures = selectors.job_failures(job=job, limit=FAILURES_SHOWN)
        context.update(failures=failures, failures_total=job.failures.count())
        response = render(request, "models_serving/job_detail.html", context)
    patch_vary_headers(response, ("HX-Request",))
    return response


@require_POST
@researcher_required
def job_cancel(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    study = _study_or_404(slug)
    job = _job_or_404(study, pk)
    was_active = job.is_active
    job = services.generation_job_cancel(job=job)
    if was_active and job.status == GenerationJob.Status.CANCELLED:
        messages.success(request, f"Job #{job.pk} cancelled; the {job.succeeded} responses stored so far are kept.")
    else:
        messages.info(request, f"Job #{job.pk} had already ended ({job.get_status_display().lower()}).")
    return redirect(_job_url(job))


@require_POST
@researcher_required
def job_retry_failed(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    study = _study_or_404(slug)
    job = _job_or_404(study, pk)
    if not workers_available():
        messages.error(request, "No task queue is configured (CELERY_BROKER_URL). Retry in a terminal: "
                                f"python manage.py generate {study.slug} {job.system.name} --retry-failed {job.pk}")
        return redirect(_job_url(job))
    try:
        with transaction.atomic():
            retry = services.generation_job_retry_failed(job=job, user=request.user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect(_job_url(job))
    messages.success(request, f"Job #{retry.pk} queued: retrying {retry.total} failed prompts of job #{job.pk}.")
    return redirect(_job_url(retry))


@require_POST
@researcher_required
def job_resume(request: HttpRequest, slug: str, pk: int) -> HttpResponse:
    study = _study_or_404(slug)
    job = _job_or_404(study, pk)
    if not workers_available():
        messages.error(request, "No task queue is configured (CELERY_BROKER_URL). Continue the job in a terminal: "
                                f"python manage.py generate {study.slug} {job.system.name}")
        return redirect(_job_url(job))
    with transaction.atomic():
        chunk = services.generation_job_resume(job=job)
    if chunk is None:
        messages.info(request, f"Job #{job.pk} needs no resuming: it has ended or a worker is on it.")
    else:
        messages.success(request, f"Job #{job.pk} sent to the workers again; it continues where it stopped.")
    return redirect(_job_url(job))
