"""Factories for test data. Build what a test needs in one line; override only what it is about."""
import factory
from django.conf import settings
from django.contrib.auth.models import Group, User

from evalsite.studies.models import Comparison, Prompt, Response, Study, System


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")

    @factory.post_generation
    def password(self, create, extracted, **kwargs):
        self.set_password(extracted or "pw-for-tests-1")
        if create:
            self.save(update_fields=["password"])


class ResearcherFactory(UserFactory):
    username = factory.Sequence(lambda n: f"researcher{n}")

    @factory.post_generation
    def researcher_group(self, create, extracted, **kwargs):
        if create:
            group, _ = Group.objects.get_or_create(name=settings.RESEARCHERS_GROUP)
            self.groups.add(group)


class StudyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Study

    slug = factory.Sequence(lambda n: f"study-{n}")
    title = factory.Sequence(lambda n: f"Study {n}")
    instructions = "Pick the better response."


class SystemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = System

    study = factory.SubFactory(StudyFactory)
    name = factory.Sequence(lambda n: f"system-{n}")
    role = System.Role.CANDIDATE


class PromptFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Prompt

    study = factory.SubFactory(StudyFactory)
    external_id = factory.Sequence(lambda n: f"p{n}")
    text = factory.Sequence(lambda n: f"Question number {n}?")
    position = factory.Sequence(lambda n: n)


class ResponseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Response

    prompt = factory.SubFactory(PromptFactory)
    system = factory.SubFactory(SystemFactory, study=factory.SelfAttribute("..prompt.study"))
    text = factory.Sequence(lambda n: f"Answer number {n}.")


def make_study_with_responses(*, n_prompts: int = 3, candidates: int = 1, **study_fields) -> Study:
    """A study with a reference, `candidates` candidates and a response from each to every prompt."""
    study = StudyFactory(**study_fields)
    systems = [SystemFactory(study=study, name="reference", role=System.Role.REFERENCE)]
    systems += [SystemFactory(study=study, name=f"candidate-{i}") for i in range(1, candidates + 1)]
    for i in range(n_prompts):
        prompt = PromptFactory(study=study, external_id=f"q{i}", category="general" if i % 2 else "science")
        for system in systems:
            ResponseFactory(prompt=prompt, system=system, text=f"{system.name} answers q{i}")
    return study


__all__ = ["Comparison", "make_study_with_responses"]
