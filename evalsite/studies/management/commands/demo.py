"""`python manage.py demo`: the demo study (live, comparisons built), a researcher login, and the URLs to open.

Safe to run again: the study file is applied through the same code as `study_apply` (which writes nothing when
the study already matches), and the login and its API token are created only once.
"""
import secrets
from io import StringIO
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.urls import reverse
from rest_framework.authtoken.models import Token

from evalsite.studies.studyfile import StudyFileError, study_file_apply

DEMO_STUDY_FILE = Path(__file__).resolve().parents[2] / "demo" / "study.toml"
DEMO_USERNAME = "researcher"


class Command(BaseCommand):
    help = "Create the demo study (live, comparisons built) and a researcher login, then print the URLs to open."

    def handle(self, *args, **options):
        try:
            with transaction.atomic():
                user, password = self._researcher()
                token, _ = Token.objects.get_or_create(user=user)
                result = study_file_apply(DEMO_STUDY_FILE, launch=True, user=user)
        except StudyFileError as exc:
            raise CommandError(exc.summary()) from exc

        for line in result.lines():
            self.stdout.write(line)
        if not result.changed:
            self.stdout.write("The demo study is already up to date.")

        self.stdout.write("")
        if password:
            self.stdout.write(self.style.SUCCESS(
                f'Created the researcher login "{user.username}" with password: {password}'))
            self.stdout.write("  (shown only now; change it with: python manage.py changepassword researcher)")
        else:
            self.stdout.write(f'The researcher login "{user.username}" already exists; its password was not '
                              "changed (set a new one with: python manage.py changepassword researcher).")
        self.stdout.write(f"API token of {user.username}: {token.key}")

        base = settings.PUBLIC_BASE_URL
        study = result.study
        self.stdout.write("")
        self.stdout.write("Open:")
        self.stdout.write(f"  Studies:     {base}{reverse('studies:list')}")
        self.stdout.write(f"  Demo study:  {base}{study.get_absolute_url()}")
        self.stdout.write(f"  Admin:       {base}{reverse('admin:index')}")
        self.stdout.write(f"  API docs:    {base}{reverse('api-docs')}")
        self.stdout.write(f'  API example: curl -H "Authorization: Token {token.key}" '
                          f"{base}{reverse('api-study-detail', args=[study.slug])}")
        self._rater_links(study.slug)

    def _rater_links(self, slug: str) -> None:
        # By command name, not by import: the studies app sits below the raters app and never imports it.
        links = StringIO()
        try:
            call_command("links", slug, stdout=links)
        except CommandError:  # the raters app is not installed: nothing to rate with
            return
        self.stdout.write("")
        self.stdout.write(f"Rate as a crowd worker would (each generic code is a new rater; "
                          f"python manage.py links {slug} makes more):")
        for line in links.getvalue().splitlines():
            self.stdout.write(f"  {line}")

    def _researcher(self):
        """The demo login: a researcher who may also open the admin. Returns (user, new password or None)."""
        group, _ = Group.objects.get_or_create(name=settings.RESEARCHERS_GROUP)
        User = get_user_model()
        user, created = User.objects.get_or_create(username=DEMO_USERNAME, defaults={"is_staff": True})
        password = None
        if created:
            password = secrets.token_urlsafe(12)
            user.set_password(password)
            user.save(update_fields=["password"])
        elif not user.is_staff:
            user.is_staff = True
            user.save(update_fields=["is_staff"])
        user.groups.add(group)  # adding a member twice is a no-op
        return user, password
