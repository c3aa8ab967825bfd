"""Fixtures for generation tests: the OpenAI-compatible test server and a study whose system has an endpoint."""
from __future__ import annotations

import pytest

from evalsite.studies.models import Prompt, Study, System
from models_serving.models import Endpoint
from models_serving.testserver import OpenAITestServer
from tests.factories import PromptFactory, StudyFactory, SystemFactory

MODEL = "koala-13b"


@pytest.fixture
def openai_server():
    """A vLLM-like server on 127.0.0.1, a free port, stopped after the test."""
    with OpenAITestServer(model=MODEL) as server:
        yield server


def make_generation_study(*, server_url: str, n_prompts: int = 10, concurrency: int = 4, params: dict | None = None,
                          api_key_env: str = "", slug: str | None = None,
                          texts: dict[int, str] | None = None) -> tuple[Study, System]:
    """A study with a reference and a candidate whose endpoint is the test server; `texts` overrides some
    prompts' text by index (to give them behaviours on the server)."""
    study = StudyFactory(**({"slug": slug} if slug else {}))
    SystemFactory(study=study, name="chatgpt", role=System.Role.REFERENCE)
    system = SystemFactory(study=study, name="koala", role=System.Role.CANDIDATE)
    Endpoint.objects.create(system=system, base_url=server_url, model=MODEL, concurrency=concurrency,
                            params=params or {}, api_key_env=api_key_env)
    texts = texts or {}
    Prompt.objects.bulk_create([
        Prompt(study=study, external_id=f"q{i}", text=texts.get(i, f"Question {i}?"), position=i)
        for i in range(n_prompts)
    ])
    return study, system


__all__ = ["MODEL", "PromptFactory", "make_generation_study"]
