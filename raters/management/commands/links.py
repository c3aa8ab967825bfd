"""`python manage.py links STUDY`: the entry links, one per line, as `<kind> <URL>` (DESIGN.md, "Commands")."""
from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from evalsite.studies.models import Study
from raters.audits.models import AuditPlan
from raters.links import entry_links


class Command(BaseCommand):
    help = ("Print a study's entry links, one per line: `generic URL` (a fresh rater code each run), "
            "`prolific URL` (with Prolific's placeholders), `mturk URL` (the ExternalQuestion URL) and, once "
            "the study has an audit plan, `audit URL` (the experts' queue; they log in). "
            "The host is PUBLIC_BASE_URL.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("study", help="The study's slug.")

    def handle(self, *args, study: str, **options) -> None:
        try:
            target = Study.objects.get(slug=study)
        except Study.DoesNotExist:
            raise CommandError(f"No study with slug {study!r}.") from None
        # Scripts parse this output: exactly one `kind URL` per line and nothing else on stdout.
        for link in entry_links(target, settings.PUBLIC_BASE_URL):
            self.stdout.write(f"{link.kind} {link.url}")
        if target.status != Study.Status.LIVE:
            self.stderr.write(f"Note: the study is {target.get_status_display().lower()}; raters following "
                              "these links are told it is not accepting ratings until it is live.")
        if AuditPlan.objects.filter(study=target, is_open=False).exists():
            self.stderr.write("Note: the audit plan is closed; experts following the audit link are told it is "
                              "not open until you open it on the study's audit page.")
