"""`python manage.py generate STUDY SYSTEM`: generate a system's missing responses, with a progress bar.

By default the job runs in this process: no worker or broker is needed (the embedded default), the bar shows
each response as it is stored, and Ctrl-C cancels the job cleanly (what was stored stays; running the command
again generates the rest). With --enqueue the job goes to the Celery workers and the command follows its
progress; Ctrl-C then only stops following.
"""
from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from evalsite.celery import app as celery_app
from evalsite.studies.models import Study, System
from evalsite.studies.services import plural
from models_serving import selectors, services
from models_serving.models import GenerationJob

FAILURES_SHOWN = 20


class Command(BaseCommand):
    help = ("Generate the responses a system is missing through its endpoint (DESIGN.md, 'Generation'). Runs "
            "here by default; --enqueue hands the job to the Celery workers and follows it.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("study", help="The study's slug.")
        parser.add_argument("system", help="The system's name in the study.")
        parser.add_argument("--enqueue", action="store_true",
                            help="Send the job to the workers (needs CELERY_BROKER_URL) and follow its progress.")
        parser.add_argument("--retry-failed", type=int, metavar="JOB",
                            help="Generate only the prompts that job JOB failed on.")
        parser.add_argument("--no-progress", action="store_true", help="Do not draw a progress bar.")

    def handle(self, *args, study: str, system: str, enqueue: bool, retry_failed: int | None, no_progress: bool,
               **options) -> None:
        target = self._system(study, system)
        if enqueue and celery_app.conf.task_always_eager:
            raise CommandError("--enqueue needs a broker: set CELERY_BROKER_URL and start a worker "
                               "(celery -A evalsite worker -Q generation,default). Without --enqueue the job "
                               "runs here.")
        job = self._job(target, enqueue=enqueue, retry_failed=retry_failed)
        self.stdout.write(f"Job #{job.pk}: {plural(job.total, 'prompt')} for {target.name} via {job.model}"
                          f"{' at ' + job.base_url if job.base_url else ' (vLLM in process)'}, "
                          f"{job.concurrency} in flight.")
        progress = selectors.job_progress(job=job)
        bar = None if no_progress else tqdm(total=job.total, initial=progress.finished, unit="resp",
                                            desc=f"Generating {target.name}", file=self.stderr._out,
                                            dynamic_ncols=True)
        try:
            job = self._follow(job, bar) if enqueue else self._run_here(job, bar)
        finally:
            if bar is not None:
                bar.close()
        self._report(job)

    def _system(self, study: str, name: str) -> System:
        try:
            target = Study.objects.get(slug=study)
        except Study.DoesNotExist:
            raise CommandError(f"No study with slug {study!r}.") from None
        system = System.objects.filter(study=target, name=name).first()
        if system is None:
            known = ", ".join(target.systems.values_list("name", flat=True)) or "none"
            raise CommandError(f"Study {study!r} has no system named {name!r} (systems: {known}).")
        return system

    def _job(self, system: System, *, enqueue: bool, retry_failed: int | None) -> GenerationJob:
        active = GenerationJob.objects.filter(system=system, status__in=GenerationJob.ACTIVE).first()
        if active is not None:
            if enqueue:
                self.stdout.write(f"Job #{active.pk} is already under way; following it.")
                return active
            if selectors.job_progress(job=active).stalled or not _recently_alive(active):
                self.stdout.write(f"Job #{active.pk} shows no sign of a runner; continuing it here.")
                return active
            raise CommandError(f"Job #{active.pk} is running on the workers for {system.name!r}. Follow it with "
                               "--enqueue, or cancel it on the generation page first.")
        try:
            if retry_failed is not None:
                previous = GenerationJob.objects.filter(pk=retry_failed, system=system).first()
                if previous is None:
                    raise CommandError(f"No generation job #{retry_failed} for {system.name!r}.")
                return services.generation_job_retry_failed(job=previous, enqueue=enqueue)
            return services.generation_job_start(system=system, enqueue=enqueue)
        except services.GenerationError as exc:
            raise CommandError(" ".join(exc.messages)) from None

    def _run_here(self, job: GenerationJob, bar) -> GenerationJob:
        failed_total = 0

        def progress(stored: int, failed: int) -> None:
            nonlocal failed_total
            failed_total += failed
            if bar is not None:
                bar.update(stored + failed)
                if failed_total:
                    bar.set_postfix(failed=failed_total)

        try:
            return services.generation_job_run_inline(job=job, progress=progress)
        except KeyboardInterrupt:
            job = services.generation_job_cancel(job=job)
            raise CommandError(f"Interrupted: job #{job.pk} cancelled with {job.succeeded} responses stored. "
                               "Run the command again to generate the rest.") from None

    def _follow(self, job: GenerationJob, bar) -> GenerationJob:
        try:
            while True:
                job.refresh_from_db()
                progress = selectors.job_progress(job=job)
                if bar is not None:
                    bar.n = progress.finished
                    if progress.failed:
                        bar.set_postfix(failed=progress.failed, refresh=False)
                    bar.refresh()
                if not job.is_active:
                    return job
                time.sleep(1)
        except KeyboardInterrupt:
            raise CommandError(f"Stopped following; job #{job.pk} goes on in the workers.") from None

    def _report(self, job: GenerationJob) -> None:
        if job.status == GenerationJob.Status.FAILED:
            raise CommandError(f"Job #{job.pk} failed after storing {job.succeeded} responses: {job.error}")
        if job.status == GenerationJob.Status.CANCELLED:
            raise CommandError(f"Job #{job.pk} was cancelled after storing {job.succeeded} responses.")
        message = f"Job #{job.pk} done: {plural(job.succeeded, 'response')} stored"
        if not job.failed:
            self.stdout.write(self.style.SUCCESS(message + "."))
            return
        self.stdout.write(self.style.WARNING(f"{message}, {plural(job.failed, 'prompt')} failed:"))
        for failure in selectors.job_failures(job=job, limit=FAILURES_SHOWN):
            self.stdout.write(f"  {failure.prompt.external_id}: {failure.message}")
        if job.failed > FAILURES_SHOWN:
            self.stdout.write(f"  and {job.failed - FAILURES_SHOWN} more")
        self.stdout.write(f"Retry them with: manage.py generate {job.system.study.slug} {job.system.name} "
                          f"--retry-failed {job.pk}")


def _recently_alive(job: GenerationJob) -> bool:
    from django.utils import timezone

    last = job.heartbeat_at or job.created_at
    return (timezone.now() - last).total_seconds() < services.STALE_AFTER_SECONDS
