"""Generation of responses: endpoints (OpenAI-compatible servers such as `vllm serve`), backends, Celery
tasks and generation jobs. Imports evalsite.studies, never raters."""
