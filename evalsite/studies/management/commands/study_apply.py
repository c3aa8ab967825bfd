"""`python manage.py study_apply FILE [--launch]`: create or update a study from its TOML file."""
from django.core.management.base import BaseCommand, CommandError

from evalsite.studies.studyfile import StudyFileError, study_file_apply


class Command(BaseCommand):
    help = ("Create or update a study, its systems, prompts, responses and comparisons from a TOML study file "
            "(DESIGN.md, 'A study as a file'). Applying the same file again changes nothing; a change that would "
            "invalidate collected judgments is refused.")

    def add_arguments(self, parser):
        parser.add_argument("file", help="the study's .toml file; the files it names are relative to it")
        parser.add_argument("--launch", action="store_true",
                            help="make the study live after applying (without it the status is left as it is)")

    def handle(self, *args, file, launch, **options):
        try:
            result = study_file_apply(file, launch=launch)
        except StudyFileError as exc:
            raise CommandError(exc.summary()) from exc
        for line in result.lines():
            self.stdout.write(line)
        if result.changed:
            self.stdout.write(self.style.SUCCESS(f"Done: {result.study.title} ({result.study.slug})."))
