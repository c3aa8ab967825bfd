"""`[systems.endpoint]` in a study file: where the platform generates a system's responses.

The study app does not import this app (dependency direction, DESIGN.md "Layout"); ModelsServingConfig.ready()
registers these functions with evalsite.studies.studyfile.register_system_table instead.

The table is stated whole: keys left out take the Endpoint defaults (no api_key_env, concurrency 64, no
params), so the file always describes the endpoint completely, and a removed table removes the endpoint.

    [systems.endpoint]
    base_url = "http://vllm:8000/v1"
    model = "koala-13b"
    api_key_env = "VLLM_API_KEY"     # the name of the environment variable, never the key
    concurrency = 64
    params = { temperature = 0.7, top_p = 0.9, max_tokens = 1024, seed = 0 }
"""
from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from evalsite.studies.models import System
from evalsite.studies.studyfile import (
    describe_value,
    problem_integer,
    problem_number,
    problem_string,
    problem_table,
)
from models_serving.models import Endpoint

ENDPOINT_KEYS = ("base_url", "model", "api_key_env", "concurrency", "params")
ENV_NAME_RE = re.compile(r"^[A-Z_][A-Z0-9_]*$")
# Prefixes of real API keys (OpenAI, Anthropic, Hugging Face, Groq, Google, GitHub): a value like this is a
# secret pasted where its variable's name belongs.
KEY_PREFIXES = ("sk-", "sk_", "hf_", "gsk_", "AIza", "ghp_", "github_pat_", "Bearer ")


def _check_stop(value: Any) -> str | None:
    if isinstance(value, str) and value:
        return None
    if isinstance(value, list) and value and all(isinstance(item, str) and item for item in value):
        return None
    return f"must be a non-empty string or an array of non-empty strings, got {describe_value(value)}"


# The sampling parameters an OpenAI-compatible server (vLLM, OpenAI) accepts, with their valid ranges.
PARAM_CHECKS = {
    "temperature": lambda v: problem_number(v, minimum=0, maximum=2),
    "top_p": lambda v: problem_number(v, minimum=0, maximum=1, above_minimum=True),
    "max_tokens": lambda v: problem_integer(v, minimum=1, maximum=2_147_483_647),
    "seed": lambda v: problem_integer(v, minimum=-(2**63), maximum=2**63 - 1),
    "stop": _check_stop,
    "presence_penalty": lambda v: problem_number(v, minimum=-2, maximum=2),
    "frequency_penalty": lambda v: problem_number(v, minimum=-2, maximum=2),
}


def _looks_like_a_key(value: str) -> bool:
    if value.startswith(KEY_PREFIXES):
        return True
    # Long random-looking strings with lower-case letters and digits are keys, not variable names.
    return len(value) >= 24 and any(c.islower() for c in value) and any(c.isdigit() for c in value)


def endpoint_validate(spec: Any, key: str) -> list[str]:
    """Every problem of an endpoint table, each starting with its key path (`systems[1].endpoint.model: ...`)."""
    if problem := problem_table(spec):
        return [f"{key}: {problem}"]
    errors = [f"{key}.{name}: unknown key; allowed keys: {', '.join(ENDPOINT_KEYS)}"
              for name in spec if name not in ENDPOINT_KEYS]

    base_url = spec.get("base_url")
    if "base_url" not in spec:
        errors.append(f'{key}.base_url: missing; the server\'s OpenAI-compatible base URL, e.g. "http://vllm:8000/v1"')
    elif problem := problem_string(base_url, max_length=500):
        errors.append(f"{key}.base_url: {problem}")
    else:
        # Not Django's URLValidator: it refuses single-label hosts such as the compose service name "vllm".
        parts = urlsplit(base_url)
        try:
            parts.port  # noqa: B018 - raises ValueError for a malformed port
            valid = parts.scheme in ("http", "https") and bool(parts.hostname) and " " not in base_url
        except ValueError:
            valid = False
        if not valid:
            errors.append(f"{key}.base_url: must be an http:// or https:// URL with a host, e.g. "
                          f'"http://vllm:8000/v1", got {describe_value(base_url)}')

    if "model" not in spec:
        errors.append(f"{key}.model: missing; the model name the server serves, e.g. \"koala-13b\"")
    elif problem := problem_string(spec["model"], max_length=200):
        errors.append(f"{key}.model: {problem}")

    if "api_key_env" in spec:
        name = spec["api_key_env"]
        if problem := problem_string(name, max_length=100):
            errors.append(f"{key}.api_key_env: {problem}")
        elif _looks_like_a_key(name):
            # The value is not echoed: it may be a live secret, and errors end up in logs and terminals.
            errors.append(f"{key}.api_key_env: this looks like an API key itself; the key must not be in the "
                          "study file. Put the key in an environment variable on the workers and give its name "
                          'here, e.g. api_key_env = "OPENAI_API_KEY"')
        elif not ENV_NAME_RE.match(name):
            errors.append(f"{key}.api_key_env: must be the name of an environment variable (capital letters, "
                          f"digits and _, e.g. \"VLLM_API_KEY\"), got {describe_value(name)}")

    if "concurrency" in spec and (problem := problem_integer(spec["concurrency"], minimum=1, maximum=4096)):
        errors.append(f"{key}.concurrency: {problem}")

    if "params" in spec:
        params = spec["params"]
        if problem := problem_table(params):
            errors.append(f"{key}.params: {problem}")
        else:
            for name, value in params.items():
                check = PARAM_CHECKS.get(name)
                if check is None:
                    errors.append(f"{key}.params.{name}: unknown sampling parameter; allowed: "
                                  f"{', '.join(PARAM_CHECKS)}")
                elif problem := check(value):
                    errors.append(f"{key}.params.{name}: {problem}")
    return errors


def _wanted_fields(spec: dict) -> dict[str, Any]:
    # Missing keys take the model's defaults, so the table in the file is the whole endpoint.
    return {
        "base_url": spec["base_url"],
        "model": spec["model"],
        "api_key_env": spec.get("api_key_env", ""),
        "concurrency": spec.get("concurrency", Endpoint._meta.get_field("concurrency").default),
        "params": dict(spec.get("params", {})),
    }


def endpoint_apply(system: System, spec: dict) -> bool:
    """Create or update the system's endpoint to match the (validated) table; True if anything was written."""
    wanted = _wanted_fields(spec)
    endpoint = Endpoint.objects.filter(system=system).first()
    if endpoint is not None and all(getattr(endpoint, name) == value for name, value in wanted.items()):
        return False
    endpoint = endpoint or Endpoint(system=system)
    for name, value in wanted.items():
        setattr(endpoint, name, value)
    endpoint.full_clean()
    endpoint.save()
    return True


def endpoint_remove(system: System) -> bool:
    deleted, _ = Endpoint.objects.filter(system=system).delete()
    return bool(deleted)
