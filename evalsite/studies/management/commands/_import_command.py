"""What import_prompts and import_responses share: reading the file, the progress bar, error output."""
from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from evalsite.studies.imports import ImportRejected
from evalsite.studies.models import Study


class ImportCommand(BaseCommand):
    kind = ""  # "prompts" or "responses"

    def import_file(self, **kwargs):  # pragma: no cover - defined by subclasses
        raise NotImplementedError

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("study", help="The study's slug.")
        parser.add_argument("file", help=f"A JSONL or CSV file of {self.kind} (format in README).")
        parser.add_argument("--replace", action="store_true",
                            help=f"Overwrite {self.kind} already in the study instead of refusing them.")
        parser.add_argument("--no-progress", action="store_true", help="Do not draw a progress bar.")

    def handle(self, *args, study: str, file: str, replace: bool, no_progress: bool, **options) -> None:
        try:
            target = Study.objects.get(slug=study)
        except Study.DoesNotExist:
            raise CommandError(f"No study with slug {study!r}.") from None
        path = Path(file)
        if not path.is_file():
            raise CommandError(f"{file}: no such file.")
        data = path.read_bytes()
        bar = None if no_progress else tqdm(total=0, unit="rows", desc=f"Importing {self.kind}", leave=False,
                                            file=self.stderr._out)

        def progress(done: int, total: int) -> None:
            if bar is not None:
                bar.total = total
                bar.n = done
                bar.refresh()

        try:
            result = self.import_file(study=target, data=data, filename=path.name, replace=replace,
                                      source="command", progress=progress)
        except ImportRejected as exc:
            raise CommandError(exc.summary(limit=200)) from None
        finally:
            if bar is not None:
                bar.close()
        self.stdout.write(self.style.SUCCESS(f"Imported {result}."))
