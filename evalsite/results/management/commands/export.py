"""manage.py export STUDY --what judgments|responses|summary|audits|findings -o FILE: a study's data as CSV.

``audits`` is one row per submitted expert audit, ``findings`` one row per span an expert flagged (with its
offsets into the response text and the quoted text); two exports rather than one option, because the two
files have different rows and columns. Drafts (audits not yet submitted) are in neither.

The same streamed files the results page and the API serve (evalsite.results.exports), so a million
judgments export in constant memory. ``-o -`` writes to standard output. A file is written under a
temporary name and renamed when complete, so an interrupted export never leaves a truncated FILE behind.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from evalsite.results import exports
from evalsite.studies.models import Study


class Command(BaseCommand):
    help = ("Export a study's judgments, responses, results summary, expert audits or audit findings as CSV "
            "(one --what per file: audits and findings are two files).")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("study", help="The study's slug.")
        # Read when the command runs, so an export registered by another app (e.g. audits) is offered too.
        parser.add_argument("--what", required=True, choices=list(exports.EXPORTS),
                            help="; ".join(f"{e.name}: {e.description}" for e in exports.EXPORTS.values()))
        parser.add_argument("-o", "--output", required=True, help="The CSV file to write, or - for standard output.")
        parser.add_argument("--bom", action="store_true", help="Start with a UTF-8 byte-order mark (for Excel).")
        parser.add_argument("--include-excluded", action="store_true",
                            help="summary: compute the results with the judgments quality control excluded.")

    def handle(self, *args, study: str, what: str, output: str, bom: bool, include_excluded: bool, **options):
        try:
            target = Study.objects.get(slug=study)
        except Study.DoesNotExist:
            raise CommandError(f"No study with slug {study!r}.") from None
        export = exports.get_export(what)
        rows = [0]

        def count(n: int) -> None:
            rows[0] += n

        stream = exports.csv_stream(export, target, exports.ExportOptions(bom=bom, include_excluded=include_excluded),
                                    on_rows=count)
        if output == "-":
            self._to_stdout(stream)
            self.stderr.write(f"Wrote {rows[0]:,} {what} rows to standard output.")
            return
        path = Path(output)
        if path.is_dir():
            raise CommandError(f"{output} is a directory; give a file name, e.g. {path / export.filename(target)}")
        if not path.parent.is_dir():
            raise CommandError(f"{output}: the folder {path.parent} does not exist.")
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
        try:
            # mkstemp makes the file private (0600); give it the permissions any new file would get.
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
            with os.fdopen(fd, "wb") as handle:
                for chunk in stream:
                    handle.write(chunk)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self.stdout.write(self.style.SUCCESS(f"Wrote {rows[0]:,} {what} rows to {path}."))

    def _to_stdout(self, stream) -> None:
        out = self.stdout._out
        binary = getattr(out, "buffer", None)
        for chunk in stream:
            if binary is not None:
                binary.write(chunk)
            else:  # a text stream (e.g. call_command(stdout=StringIO()))
                out.write(chunk.decode("utf-8"))
        (binary or out).flush()
