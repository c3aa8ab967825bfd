"""The endpoint form. It checks what a study file's [systems.endpoint] table checks, with the same rules."""
from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError

from evalsite.studies.forms import JSONObjectField
from models_serving.models import Endpoint
from models_serving.studyfile import ENV_NAME_RE, PARAM_CHECKS, _looks_like_a_key


class EndpointForm(forms.Form):
    backend = forms.ChoiceField(choices=Endpoint.Backend.choices, initial=Endpoint.Backend.HTTP)
    base_url = forms.CharField(
        max_length=500, required=False, label="Base URL",
        help_text="The server's OpenAI-compatible base URL, as the workers reach it: http://vllm:8000/v1, or "
                  "https://api.openai.com/v1 for the reference.",
        widget=forms.TextInput(attrs={"placeholder": "http://vllm:8000/v1", "autocomplete": "off"}),
    )
    model = forms.CharField(max_length=200, help_text="The model name the server serves (vLLM: --served-model-name).",
                            widget=forms.TextInput(attrs={"autocomplete": "off"}))
    api_key_env = forms.CharField(
        max_length=100, required=False, label="API key variable",
        help_text="The NAME of the environment variable holding the key on the workers, e.g. VLLM_API_KEY. "
                  "Never the key itself. Empty: no key is sent.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "placeholder": "VLLM_API_KEY"}),
    )
    concurrency = forms.IntegerField(
        min_value=1, max_value=4096, initial=64,
        help_text="Requests kept in flight. vLLM batches only what is in flight: 32-256 keeps a GPU busy; "
                  "OpenAI's rate limits may need less.",
    )
    params = JSONObjectField(
        required=False, label="Sampling parameters",
        help_text='JSON, e.g. {"temperature": 0.7, "top_p": 0.9, "max_tokens": 1024, "seed": 0}. Allowed: '
                  f"{', '.join(PARAM_CHECKS)}. Left out: temperature 1, top_p 1, max_tokens 1024, seed 0, "
                  "no stop, penalties 0; every one is sent explicitly.",
    )

    @classmethod
    def for_endpoint(cls, endpoint: Endpoint | None, data=None) -> EndpointForm:
        if data is not None or endpoint is None:
            return cls(data)
        return cls(initial={"backend": endpoint.backend, "base_url": endpoint.base_url, "model": endpoint.model,
                            "api_key_env": endpoint.api_key_env, "concurrency": endpoint.concurrency,
                            "params": endpoint.params})

    def clean_api_key_env(self) -> str:
        name = self.cleaned_data["api_key_env"].strip()
        if not name:
            return ""
        if _looks_like_a_key(name):
            # Not echoed back, not even in the re-rendered field: it may be a live secret.
            self.data = self.data.copy()
            self.data[self.add_prefix("api_key_env")] = ""
            raise ValidationError("This looks like an API key itself. Put the key in an environment variable on "
                                  "the workers and give the variable's name here, e.g. OPENAI_API_KEY.")
        if not ENV_NAME_RE.match(name):
            raise ValidationError("Must be the name of an environment variable: capital letters, digits and _, "
                                  "e.g. VLLM_API_KEY.")
        return name

    def clean_params(self) -> dict:
        params = self.cleaned_data["params"]
        errors = []
        for name, value in params.items():
            check = PARAM_CHECKS.get(name)
            if check is None:
                errors.append(f"{name}: unknown sampling parameter; allowed: {', '.join(PARAM_CHECKS)}.")
            elif problem := check(value):
                errors.append(f"{name}: {problem}.")
        if errors:
            raise ValidationError(errors)
        return params

    def clean(self):
        data = super().clean()
        if data.get("backend") == Endpoint.Backend.HTTP and not data.get("base_url"):
            self.add_error("base_url", "Required for an OpenAI-compatible server, e.g. http://vllm:8000/v1.")
        return data
