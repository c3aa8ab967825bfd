"""A study as a file: `manage.py study_apply FILE [--launch]` (DESIGN.md, "A study as a file").

Each test works on a copy of tests/studies/data/design_example/ (the DESIGN.md example, verbatim, with small
prompt and response files) in tmp_path, edited as the test needs.
"""
import ast
import shutil
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from evalsite.studies import studyfile
from evalsite.studies.models import Comparison, ImportBatch, Prompt, Response, Study, System
from evalsite.studies.studyfile import StudyFileError, StudyFileRefused, study_file_apply, study_file_load
from models_serving.models import Endpoint

DATA = Path(__file__).parent / "data"
SLUG = "koala-vs-chatgpt"

pytestmark = pytest.mark.django_db


# --- helpers --------------------------------------------------------------------------------------------

@pytest.fixture
def example(tmp_path) -> Path:
    """A fresh copy of the DESIGN.md example; returns the path of its study.toml."""
    folder = tmp_path / "design_example"
    shutil.copytree(DATA / "design_example", folder)
    return folder / "study.toml"


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path.name}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def run(path: Path, *args: str) -> str:
    out = StringIO()
    call_command("study_apply", str(path), *args, stdout=out)
    return out.getvalue()


def snapshot() -> dict:
    """Everything an apply could touch: row counts, field values and timestamps."""
    return {
        "studies": list(Study.objects.order_by("pk").values()),
        "systems": list(System.objects.order_by("pk").values()),
        "prompts": list(Prompt.objects.order_by("pk").values()),
        "responses": list(Response.objects.order_by("pk").values()),
        "comparisons": list(Comparison.objects.order_by("pk").values()),
        "batches": list(ImportBatch.objects.order_by("pk").values()),
        "endpoints": list(Endpoint.objects.order_by("pk").values()),
    }


def judge(study: Study, done: int = 2, **filters) -> int:
    """Pretend raters judged comparisons (the rating engine that counts them comes in a later issue)."""
    return Comparison.objects.filter(study=study, **filters).update(judgments_done=done)


def refused(path: Path) -> str:
    with pytest.raises(StudyFileRefused) as info:
        study_file_apply(path)
    return str(info.value)


def errors_of(path: Path) -> list[str]:
    with pytest.raises(StudyFileError) as info:
        study_file_load(path)
    return info.value.errors


# --- the DESIGN.md example ------------------------------------------------------------------------------

def test_design_example_builds_the_study_with_systems_endpoint_prompts_responses_and_comparisons(example):
    output = run(example)

    study = Study.objects.get(slug=SLUG)
    assert study.title == "Koala vs ChatGPT"
    assert study.instructions.startswith("Which response answers the request better?")
    assert (study.scale, study.pairing, study.judgments_per_comparison) == ("ab_tie", "vs_reference", 3)
    assert study.status == Study.Status.DRAFT

    chatgpt, koala = study.systems.get(name="chatgpt"), study.systems.get(name="koala-13b")
    assert (chatgpt.role, koala.role) == ("reference", "candidate")
    assert koala.metadata == {"base_model": "llama-13b", "params_b": 13, "imitation_tokens_m": 150}
    assert chatgpt.metadata == {}

    endpoint = Endpoint.objects.get(system=koala)
    assert (endpoint.base_url, endpoint.model, endpoint.api_key_env, endpoint.concurrency) == (
        "http://vllm:8000/v1", "koala-13b", "VLLM_API_KEY", 64)
    assert endpoint.params == {"temperature": 0.7, "top_p": 0.9, "max_tokens": 1024, "seed": 0}
    assert not Endpoint.objects.filter(system=chatgpt).exists()

    prompts = {p.external_id: p for p in study.prompts.all()}
    assert list(prompts) == ["koala_0", "koala_1", "koala_2"]
    assert prompts["koala_1"].category == "creative"
    assert prompts["koala_2"].messages[-1] == {"role": "user", "content": "When was it published?"}

    assert Response.objects.filter(system=chatgpt).count() == 3
    assert Response.objects.filter(system=koala).count() == 3
    assert Response.objects.get(system=chatgpt, prompt=prompts["koala_2"]).model_name == "gpt-3.5-turbo"
    assert study.comparisons.count() == 3

    batches = ImportBatch.objects.filter(study=study)
    assert sorted(batches.values_list("filename", flat=True)) == ["chatgpt.jsonl", "koala.jsonl", "prompts.jsonl"]
    assert set(batches.values_list("source", flat=True)) == {"study_file"}

    assert f'Study "{SLUG}" created' in output
    assert "Systems: 2 added (chatgpt, koala-13b)" in output
    assert "Prompts from prompts.jsonl: 3 added, 0 replaced, 0 unchanged" in output
    assert "Comparisons: 3 added, 0 removed, 3 in all" in output


def test_applying_the_same_file_twice_changes_nothing(example):
    run(example)
    before = snapshot()

    output = run(example)

    assert snapshot() == before  # same rows, same values, same updated_at, no new ImportBatch
    assert "unchanged: already up to date" in output
    assert "Prompts from prompts.jsonl: 0 added, 0 replaced, 3 unchanged" in output
    assert "Comparisons: 0 added, 0 removed, 3 in all" in output


def test_launch_makes_the_study_live_and_without_it_the_status_is_left_alone(example):
    run(example)
    assert Study.objects.get(slug=SLUG).status == Study.Status.DRAFT

    output = run(example, "--launch")
    assert Study.objects.get(slug=SLUG).status == Study.Status.LIVE
    assert "launched now" in output

    Study.objects.filter(slug=SLUG).update(status=Study.Status.PAUSED)
    run(example)
    assert Study.objects.get(slug=SLUG).status == Study.Status.PAUSED


def test_launch_on_create_builds_then_launches(example):
    run(example, "--launch")
    study = Study.objects.get(slug=SLUG)
    assert study.status == Study.Status.LIVE
    assert study.comparisons.count() == 3


def test_paths_are_relative_to_the_study_file_not_the_working_directory(example, monkeypatch, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    run(example)
    assert Prompt.objects.filter(study__slug=SLUG).count() == 3


# --- validation: every error names its key --------------------------------------------------------------

@pytest.mark.parametrize("old, new, expected", [
    ('role = "candidate"', 'role = "baseline"', 'systems[1].role: must be "reference" or "candidate", got "baseline"'),
    ("judgments_per_comparison = 3", 'judgments_per_comparison = "three"',
     'judgments_per_comparison: must be an integer from 1 to 100, got "three"'),
    ("judgments_per_comparison = 3", "judgments_per_comparison = 0",
     "judgments_per_comparison: must be an integer from 1 to 100, got 0"),
    ('scale = "ab_tie"', 'scale = "stars"',
     'scale: must be one of "ab_tie", "ab_tie_bothbad", "ab_tie_strength", got "stars"'),
    ('pairing = "vs_reference"', 'pairing = "round_robin"',
     'pairing: must be "vs_reference" or "all_pairs", got "round_robin"'),
    ('slug = "koala-vs-chatgpt"', 'slug = "koala vs chatgpt!"',
     'slug: must contain only letters, digits, hyphens and underscores, got "koala vs chatgpt!"'),
    ('slug = "koala-vs-chatgpt"\n', "", "slug: missing"),
    ('title = "Koala vs ChatGPT"\n', "", "title: missing"),
    ('title = "Koala vs ChatGPT"', 'title = ""', "title: must not be empty"),
    ('prompts = "prompts.jsonl"\n', "", "prompts: missing"),
    ('name = "chatgpt"', 'name = "koala-13b"', 'systems[1].name: duplicate system name "koala-13b" (also systems[0].name)'),
    ('name = "chatgpt"\n', "", "systems[0].name: missing"),
    ('role = "candidate"', 'role = "reference"',
     'systems: a study has at most one system with role = "reference", found 2 (chatgpt, koala-13b)'),
    ('role = "reference"', 'role = "candidate"',
     'systems: pairing "vs_reference" needs exactly one system with role = "reference", found none'),
    ("metadata = {", "colour = 3\nmetadata = {", "systems[1].colour: unknown key; allowed keys: name, role, metadata, endpoint"),
    ("metadata = { base_model", "metadata = { released = 2023-04-03, base_model",
     'systems[1].metadata.released: TOML dates and times cannot be stored; write it as a string, e.g. "2023-04-03"'),
    ('metadata = { base_model = "llama-13b", params_b = 13, imitation_tokens_m = 150 }', 'metadata = "llama"',
     'systems[1].metadata: must be a table, e.g. { key = "value" }, got "llama"'),
    ('scale = "ab_tie"', 'scale = "ab_tie"\nreason = "sometimes"',
     'reason: must be one of "none", "optional", "required", got "sometimes"'),
    ('scale = "ab_tie"', "scale = \"ab_tie\"\ngold_rate = 1.5", "gold_rate: must be a number from 0 to 1, got 1.5"),
    ('scale = "ab_tie"', "scale = \"ab_tie\"\nlease_ttl_seconds = 10",
     "lease_ttl_seconds: must be an integer >= 30, got 10"),
    ('scale = "ab_tie"', 'scale = "ab_tie"\nprovider_settings = "prolific"', "provider_settings: must be a table"),
    ('scale = "ab_tie"', 'scale = "ab_tie"\ncompletion_code = "SAME"\nscreened_out_code = "SAME"',
     "screened_out_code: must differ from completion_code"),
    ('responses = ["chatgpt.jsonl", "koala.jsonl"]', 'responses = "koala.jsonl"',
     'systems[0]: no responses for "chatgpt" in the response files; add its responses to a file listed in '
     "responses, or give it [systems.endpoint] so the platform generates them"),
    ('responses = ["chatgpt.jsonl", "koala.jsonl"]', "responses = 3", "responses: must be a file path or an array"),
    ('[systems.endpoint]', "[systems.weights]\nsize = 1\n[systems.endpoint]",
     "systems[1].weights: unknown table [systems.weights]; known tables: [systems.endpoint]"),
])
def test_a_bad_value_is_reported_with_its_key_path(example, old, new, expected):
    edit(example, old, new)

    with pytest.raises(CommandError) as info:
        run(example)

    assert expected in str(info.value)
    assert "nothing was changed" in str(info.value)
    assert not Study.objects.exists()
    assert not ImportBatch.objects.exists()


def test_unknown_top_level_key_is_named_with_the_allowed_keys(example):
    edit(example, 'scale = "ab_tie"', 'scale = "ab_tie"\ncolour = 2\nk = 3')
    errors = errors_of(example)
    assert errors[0].startswith("colour: unknown key; allowed top-level keys: slug, title, instructions, scale,")
    assert errors[0].endswith("prompts, responses, systems")
    assert errors[1].startswith("k: unknown key;")


def test_a_misspelt_top_level_key_gets_a_suggestion(example):
    edit(example, "judgments_per_comparison = 3", "judgements_per_comparison = 3")
    assert errors_of(example)[0].startswith(
        "judgements_per_comparison: unknown key (did you mean 'judgments_per_comparison'?)")


def test_a_missing_prompts_file_is_named_with_its_absolute_path(example):
    (example.parent / "prompts.jsonl").unlink()
    assert errors_of(example) == [f"prompts: file not found: {example.parent / 'prompts.jsonl'}"]


def test_a_missing_response_file_names_its_index(example):
    edit(example, '"koala.jsonl"]', '"koala.jsonl", "vicuna.jsonl"]')
    assert errors_of(example) == [f"responses[2]: file not found: {example.parent / 'vicuna.jsonl'}"]


def test_toml_syntax_error_names_line_and_column(example):
    edit(example, 'title = "Koala vs ChatGPT"', "title = Koala vs ChatGPT")
    errors = errors_of(example)
    assert len(errors) == 1
    assert errors[0].startswith("invalid TOML:")
    assert "line 2, column 9" in errors[0]


def test_a_missing_study_file_is_reported(tmp_path):
    missing = tmp_path / "nope.toml"
    assert errors_of(missing) == [f"file not found: {missing}"]


def test_bad_lines_in_the_data_files_name_the_key_file_line_and_field(example):
    (example.parent / "koala.jsonl").write_text(
        '{"prompt_id": "koala_0", "system": "koala-13b", "text": "ok"}\n'
        '{"prompt_id": "koala_1", "system": "koala-13b", "text": ""}\n'
        '{"prompt_id": "koala_9", "system": "koala-13b", "text": "to a prompt that is not there"}\n'
        '{"prompt_id": "koala_2", "system": "vicuna", "text": "from a system that is not there"}\n'
        '{"prompt_id": "koala_0", "system": "chatgpt", "text": "a second response of chatgpt"}\n',
        encoding="utf-8",
    )
    (example.parent / "prompts.jsonl").write_text(
        (example.parent / "prompts.jsonl").read_text(encoding="utf-8") + '{"id": "koala_0", "prompt": "again"}\n',
        encoding="utf-8",
    )
    errors = errors_of(example)
    assert "prompts: prompts.jsonl line 4, field 'id': duplicate id 'koala_0' (first on line 1)" in errors
    assert "responses[1]: koala.jsonl line 2, field 'text': is empty" in errors
    # The cross-file checks need every file to parse, so fix the empty text and look again.
    edit(example.parent / "koala.jsonl", '"text": ""', '"text": "fixed"')
    edit(example.parent / "prompts.jsonl", '{"id": "koala_0", "prompt": "again"}\n', "")
    errors = errors_of(example)
    assert "responses[1]: koala.jsonl line 3, field 'prompt_id': prompt id \"koala_9\" is not in prompts.jsonl" in errors
    assert ("responses[1]: koala.jsonl line 4, field 'system': system \"vicuna\" is not one of the [[systems]] "
            "(chatgpt, koala-13b)") in errors
    assert ("responses[1]: koala.jsonl line 5, field 'prompt_id': a second response of \"chatgpt\" to \"koala_0\" "
            "(first in responses[0] chatgpt.jsonl line 1)") in errors


def test_every_problem_is_reported_at_once(example):
    edit(example, 'role = "candidate"', 'role = "baseline"')
    edit(example, "judgments_per_comparison = 3", 'judgments_per_comparison = "three"')
    edit(example, "concurrency = 64", "concurrency = 0")
    (example.parent / "prompts.jsonl").unlink()

    with pytest.raises(StudyFileError) as info:
        study_file_load(example)

    assert len(info.value.errors) == 4
    keys = [error.split(":")[0] for error in info.value.errors]
    assert keys == ["judgments_per_comparison", "systems[1].role", "systems[1].endpoint.concurrency", "prompts"]
    assert "(4 problems)" in str(info.value)


# --- [systems.endpoint] ---------------------------------------------------------------------------------

@pytest.mark.parametrize("old, new, expected", [
    ('base_url = "http://vllm:8000/v1"', 'base_url = "ftp://vllm/v1"',
     'systems[1].endpoint.base_url: must be an http:// or https:// URL with a host'),
    ('base_url = "http://vllm:8000/v1"', 'base_url = "http://vllm:port/v1"', "systems[1].endpoint.base_url: must be"),
    ('base_url = "http://vllm:8000/v1" ', "", "systems[1].endpoint.base_url: missing"),
    ('model = "koala-13b"', 'model = ""', "systems[1].endpoint.model: must not be empty"),
    ('model = "koala-13b"\n', "", "systems[1].endpoint.model: missing"),
    ('api_key_env = "VLLM_API_KEY"', 'api_key_env = "vllm api key"',
     'systems[1].endpoint.api_key_env: must be the name of an environment variable'),
    ("concurrency = 64", "concurrency = 0", "systems[1].endpoint.concurrency: must be an integer from 1 to 4096, got 0"),
    ("concurrency = 64", "concurrency = 5000",
     "systems[1].endpoint.concurrency: must be an integer from 1 to 4096, got 5000"),
    ("temperature = 0.7", "temperature = 2.5",
     "systems[1].endpoint.params.temperature: must be a number from 0 to 2, got 2.5"),
    ("top_p = 0.9", "top_p = 0", "systems[1].endpoint.params.top_p: must be a number greater than 0 and at most 1"),
    ("max_tokens = 1024", "max_tokens = 0", "systems[1].endpoint.params.max_tokens: must be an integer >= 1, got 0"),
    ("seed = 0", "seed = 0.5", "systems[1].endpoint.params.seed: must be an integer, got 0.5"),
    ("seed = 0", "seed = 0, stop = [1]", "systems[1].endpoint.params.stop: must be a non-empty string or an array"),
    ("seed = 0", "seed = 0, best_of = 2", "systems[1].endpoint.params.best_of: unknown sampling parameter; allowed: "
                                          "temperature, top_p, max_tokens, seed, stop, presence_penalty"),
    ("seed = 0", "seed = 0, presence_penalty = 3", "systems[1].endpoint.params.presence_penalty: must be a number "
                                                   "from -2 to 2, got 3"),
    ("concurrency = 64", "concurrency = 64\ngpu = 1", "systems[1].endpoint.gpu: unknown key; allowed keys: base_url"),
])
def test_endpoint_errors_name_their_key(example, old, new, expected):
    edit(example, old, new)
    errors = errors_of(example)
    assert any(error.startswith(expected) for error in errors), errors


@pytest.mark.parametrize("secret", ["sk-proj-abc123def456", "hf_AbCdEfGhIjKlMnOpQrStUv", "a1b2c3d4e5f6a7b8c9d0e1f2a3b4"])
def test_an_api_key_in_the_file_is_refused_without_echoing_it(example, secret):
    edit(example, 'api_key_env = "VLLM_API_KEY"', f'api_key_env = "{secret}"')
    with pytest.raises(StudyFileError) as info:
        study_file_load(example)
    message = str(info.value)
    assert "systems[1].endpoint.api_key_env: this looks like an API key itself; the key must not be in the " \
           "study file" in message
    assert secret not in message


def test_optional_stop_and_penalties_are_accepted_and_stored(example):
    edit(example, "seed = 0", 'seed = 0, stop = ["\\n\\n", "###"], presence_penalty = 0.5, frequency_penalty = -1')
    run(example)
    assert Endpoint.objects.get().params["stop"] == ["\n\n", "###"]


def test_a_system_with_an_endpoint_needs_no_response_file(example):
    edit(example, 'responses = ["chatgpt.jsonl", "koala.jsonl"]', 'responses = ["chatgpt.jsonl"]')
    output = run(example)
    study = Study.objects.get(slug=SLUG)
    assert not Response.objects.filter(system__name="koala-13b").exists()
    assert Endpoint.objects.filter(system__name="koala-13b").exists()
    assert study.comparisons.count() == 0  # built once `manage.py generate` has filled in koala's responses
    assert "3 prompts lack a response" in output


def test_endpoint_table_changes_update_the_endpoint_and_removing_it_removes_the_endpoint(example):
    run(example)
    edit(example, "concurrency = 64", "concurrency = 8")
    output = run(example)
    assert Endpoint.objects.get(system__name="koala-13b").concurrency == 8
    assert "Systems: 1 updated (koala-13b); 1 unchanged (chatgpt)" in output

    edit(example, "api_key_env = \"VLLM_API_KEY\"", "")
    run(example)
    assert Endpoint.objects.get(system__name="koala-13b").api_key_env == ""  # the table is stated whole

    text = example.read_text(encoding="utf-8")
    example.write_text(text[:text.index("[systems.endpoint]")], encoding="utf-8")
    output = run(example)
    assert not Endpoint.objects.exists()
    assert "1 updated (koala-13b)" in output


def test_the_study_app_does_not_import_models_serving():
    tree = ast.parse(Path(studyfile.__file__).read_text(encoding="utf-8"))
    imported = [node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    imported += [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]
    assert not [name for name in imported if name and name.startswith(("models_serving", "raters"))]
    assert "endpoint" in studyfile.system_tables()  # registered by models_serving's AppConfig.ready()


# --- optional settings ----------------------------------------------------------------------------------

OPTIONAL_SETTINGS = """reason = "required"
per_rater_cap = 40
lease_ttl_seconds = 900
gold_rate = 0.1
gold_accuracy_threshold = 0.8
gold_min_answered = 4
min_seconds_per_judgment = 8
completion_code = "KOALA-DONE"
screened_out_code = "KOALA-OUT"
provider_settings = { prolific_completion_url = "https://app.prolific.com/submissions/complete?cc=KOALA-DONE" }
"""


def test_optional_settings_map_to_study_fields(example):
    edit(example, "prompts = ", OPTIONAL_SETTINGS + "prompts = ")
    run(example)
    study = Study.objects.get(slug=SLUG)
    assert study.reason_mode == "required"
    assert (study.per_rater_cap, study.lease_ttl_seconds, study.gold_min_answered,
            study.min_seconds_per_judgment) == (40, 900, 4, 8)
    assert (study.gold_rate, study.gold_accuracy_threshold) == (0.1, 0.8)
    assert (study.completion_code, study.screened_out_code) == ("KOALA-DONE", "KOALA-OUT")
    assert study.provider_settings["prolific_completion_url"].endswith("cc=KOALA-DONE")

    before = snapshot()
    run(example)
    assert snapshot() == before


def test_settings_absent_from_the_file_keep_their_current_values(example):
    run(example)
    Study.objects.filter(slug=SLUG).update(per_rater_cap=50, reason_mode="none")

    run(example)
    study = Study.objects.get(slug=SLUG)
    assert (study.per_rater_cap, study.reason_mode) == (50, "none")

    edit(example, "prompts = ", "per_rater_cap = 60\nprompts = ")
    output = run(example)
    assert Study.objects.get(slug=SLUG).per_rater_cap == 60
    assert "updated (per_rater_cap)" in output


# --- harmless changes apply -----------------------------------------------------------------------------

def test_title_k_and_a_new_prompt_with_responses_apply_even_with_judgments(example):
    run(example, "--launch")
    study = Study.objects.get(slug=SLUG)
    judge(study, 2)
    old_comparisons = set(study.comparisons.values_list("pk", flat=True))
    batches = ImportBatch.objects.count()

    edit(example, 'title = "Koala vs ChatGPT"', 'title = "Koala 13B vs ChatGPT"')
    edit(example, "judgments_per_comparison = 3", "judgments_per_comparison = 5")
    folder = example.parent
    for name, line in (
        ("prompts.jsonl", '{"id": "koala_3", "prompt": "Name three primary colours.", "category": "art"}'),
        ("chatgpt.jsonl", '{"prompt_id": "koala_3", "system": "chatgpt", "text": "Red, yellow and blue."}'),
        ("koala.jsonl", '{"prompt_id": "koala_3", "system": "koala-13b", "text": "Red, green and purple."}'),
    ):
        (folder / name).write_text((folder / name).read_text(encoding="utf-8") + line + "\n", encoding="utf-8")

    output = run(example)

    study.refresh_from_db()
    assert (study.title, study.judgments_per_comparison, study.status) == ("Koala 13B vs ChatGPT", 5, "live")
    assert study.prompts.count() == 4
    assert study.comparisons.count() == 4
    assert old_comparisons < set(study.comparisons.values_list("pk", flat=True))
    assert sum(study.comparisons.values_list("judgments_done", flat=True)) == 6  # judgments untouched
    new_batches = ImportBatch.objects.filter(study=study).order_by("-pk")[:3]
    assert ImportBatch.objects.count() == batches + 3
    assert {(b.kind, b.replace, b.created, b.unchanged) for b in new_batches} == {
        ("prompts", True, 1, 3), ("responses", True, 1, 3)}
    assert "updated (title, judgments_per_comparison)" in output
    assert "Prompts from prompts.jsonl: 1 added, 0 replaced, 3 unchanged" in output


def test_changing_an_unjudged_response_replaces_only_that_file(example):
    run(example)
    study = Study.objects.get(slug=SLUG)
    judge(study, 1, prompt__external_id="koala_0")
    batches = ImportBatch.objects.count()
    edit(example.parent / "koala.jsonl", "It was published in 1811", "It was published in 1813")

    output = run(example)

    assert Response.objects.get(system__name="koala-13b", prompt__external_id="koala_2").text.startswith(
        "It was published in 1813")
    assert ImportBatch.objects.count() == batches + 1  # only koala.jsonl was imported again
    assert "Responses from koala.jsonl: 0 added, 1 replaced, 2 unchanged" in output
    assert "Responses from chatgpt.jsonl: 0 added, 0 replaced, 3 unchanged" in output


def test_removing_an_unjudged_prompt_removes_it_with_its_responses_and_comparisons(example):
    run(example)
    study = Study.objects.get(slug=SLUG)
    judge(study, 2, prompt__external_id="koala_0")
    for name in ("prompts.jsonl", "chatgpt.jsonl", "koala.jsonl"):
        path = example.parent / name
        path.write_text("".join(line for line in path.read_text(encoding="utf-8").splitlines(keepends=True)
                                if '"koala_1"' not in line), encoding="utf-8")

    output = run(example)

    assert sorted(study.prompts.values_list("external_id", flat=True)) == ["koala_0", "koala_2"]
    assert Response.objects.filter(prompt__study=study).count() == 4
    assert study.comparisons.count() == 2
    assert "Prompts from prompts.jsonl: 0 added, 0 replaced, 2 unchanged, 1 removed" in output


def test_removing_an_unjudged_system_removes_it(example, tmp_path):
    add_vicuna(example)
    run(example)
    remove_vicuna(example)

    output = run(example)

    assert not System.objects.filter(name="vicuna-13b").exists()
    assert Comparison.objects.count() == 3
    assert "1 removed (vicuna-13b)" in output


def test_moving_the_reference_to_another_system_works_before_any_judgment(example):
    run(example)
    edit(example, 'role = "reference"', 'role = "REF"')
    edit(example, 'role = "candidate"', 'role = "reference"')
    edit(example, 'role = "REF"', 'role = "candidate"')

    run(example)

    assert System.objects.get(name="koala-13b").role == "reference"
    assert System.objects.get(name="chatgpt").role == "candidate"
    assert Comparison.objects.count() == 3


# --- changes that would invalidate judgments are refused ------------------------------------------------

VICUNA_BLOCK = '\n[[systems]]\nname = "vicuna-13b"\nrole = "candidate"\n'


def add_vicuna(example: Path) -> None:
    (example.parent / "vicuna.jsonl").write_text(
        "".join(f'{{"prompt_id": "koala_{i}", "system": "vicuna-13b", "text": "Vicuna answer {i}."}}\n'
                for i in range(3)), encoding="utf-8")
    edit(example, '"koala.jsonl"]', '"koala.jsonl", "vicuna.jsonl"]')
    edit(example, "[[systems]]", VICUNA_BLOCK.lstrip("\n") + "\n[[systems]]")


def remove_vicuna(example: Path) -> None:
    edit(example, ', "vicuna.jsonl"]', "]")
    edit(example, VICUNA_BLOCK.lstrip("\n") + "\n", "")


@pytest.fixture
def judged_example(example):
    """The example applied and launched, with 2 judgments on each of its 3 comparisons."""
    run(example, "--launch")
    judge(Study.objects.get(slug=SLUG), 2)
    return example


def assert_refused_and_unchanged(example: Path, *expected: str) -> str:
    before = snapshot()
    message = refused(example)
    for text in expected:
        assert text in message
    assert "would invalidate" in message and "Nothing was changed" in message
    assert "give the file a new slug" in message
    assert snapshot() == before
    return message


def test_changing_the_scale_after_judgments_is_refused(judged_example):
    edit(judged_example, 'scale = "ab_tie"', 'scale = "ab_tie_bothbad"')
    assert_refused_and_unchanged(judged_example, 'scale: changing "ab_tie" to "ab_tie_bothbad" would reinterpret '
                                                 "6 judgments on 3 comparisons")


def test_changing_the_pairing_after_judgments_is_refused(judged_example):
    edit(judged_example, 'pairing = "vs_reference"', 'pairing = "all_pairs"')
    assert_refused_and_unchanged(judged_example, 'pairing: changing "vs_reference" to "all_pairs"')


def test_changing_a_judged_systems_role_is_refused(judged_example):
    edit(judged_example, 'role = "reference"', 'role = "REF"')
    edit(judged_example, 'role = "candidate"', 'role = "reference"')
    edit(judged_example, 'role = "REF"', 'role = "candidate"')
    chatgpt = System.objects.get(name="chatgpt")
    message = assert_refused_and_unchanged(
        judged_example,
        f'systems[0].role: "chatgpt" (id {chatgpt.pk}) would change from reference to candidate, but its responses '
        "have 6 judgments",
    )
    assert 'systems[1].role: "koala-13b"' in message


def test_removing_a_judged_system_is_refused(example):
    add_vicuna(example)
    run(example)
    judge(Study.objects.get(slug=SLUG), 1, response_b__system__name="vicuna-13b")
    judge(Study.objects.get(slug=SLUG), 1, response_a__system__name="vicuna-13b")
    remove_vicuna(example)
    vicuna = System.objects.get(name="vicuna-13b")
    assert_refused_and_unchanged(example, f'systems: "vicuna-13b" (id {vicuna.pk}) is not in the file any more, but '
                                          "its responses have 3 judgments")


def test_removing_a_judged_prompt_is_refused(judged_example):
    for name in ("prompts.jsonl", "chatgpt.jsonl", "koala.jsonl"):
        path = judged_example.parent / name
        path.write_text("".join(line for line in path.read_text(encoding="utf-8").splitlines(keepends=True)
                                if '"koala_1"' not in line), encoding="utf-8")
    prompt = Prompt.objects.get(external_id="koala_1")
    assert_refused_and_unchanged(judged_example, f'prompts: prompt "koala_1" (id {prompt.pk}) is not in prompts.jsonl '
                                                 "any more, but its comparisons have 2 judgments")


def test_changing_the_text_of_a_judged_prompt_is_refused(judged_example):
    edit(judged_example.parent / "prompts.jsonl", "Write a haiku about autumn leaves.", "Write a haiku about snow.")
    prompt = Prompt.objects.get(external_id="koala_1")
    assert_refused_and_unchanged(judged_example, f'prompts: the text of prompt "koala_1" (id {prompt.pk}) changed')


def test_changing_the_text_of_a_judged_response_is_refused(judged_example):
    edit(judged_example.parent / "koala.jsonl", "It was published in 1811", "It was published in 1813")
    response = Response.objects.get(system__name="koala-13b", prompt__external_id="koala_2")
    assert_refused_and_unchanged(
        judged_example,
        f'responses[1]: the text of the response of "koala-13b" to "koala_2" (response id {response.pk}) changed in '
        "koala.jsonl (line 3), but it has 2 judgments",
    )


def test_a_refused_file_with_a_harmless_change_too_changes_nothing(judged_example):
    edit(judged_example, 'title = "Koala vs ChatGPT"', 'title = "Renamed"')
    edit(judged_example, 'scale = "ab_tie"', 'scale = "ab_tie_strength"')
    assert_refused_and_unchanged(judged_example, "scale:")
    assert Study.objects.get(slug=SLUG).title == "Koala vs ChatGPT"


def test_a_new_slug_starts_a_new_study_and_keeps_the_old_one(judged_example):
    edit(judged_example, 'slug = "koala-vs-chatgpt"', 'slug = "koala-vs-chatgpt-v2"')
    edit(judged_example, 'scale = "ab_tie"', 'scale = "ab_tie_bothbad"')
    run(judged_example)
    assert Study.objects.get(slug="koala-vs-chatgpt-v2").scale == "ab_tie_bothbad"
    old = Study.objects.get(slug=SLUG)
    assert old.scale == "ab_tie"
    assert sum(old.comparisons.values_list("judgments_done", flat=True)) == 6


def test_the_command_prints_the_refusal_and_exits_non_zero(judged_example):
    edit(judged_example, 'scale = "ab_tie"', 'scale = "ab_tie_bothbad"')
    with pytest.raises(CommandError) as info:
        run(judged_example)
    assert "scale: changing" in str(info.value)
    assert "To proceed: revert these changes" in str(info.value)


def test_prompts_remove_service_refuses_judged_prompts_and_removes_unjudged_ones():
    from evalsite.studies import services
    from tests.factories import make_study_with_responses

    study = make_study_with_responses(n_prompts=3)
    services.comparisons_build(study=study)
    judge(study, 1, prompt__external_id="q0")

    with pytest.raises(services.StudyRuleError, match="Cannot remove prompts q0"):
        services.prompts_remove(study=study, external_ids=["q0", "q1"])
    assert study.prompts.count() == 3

    assert services.prompts_remove(study=study, external_ids=["q1", "q2"]) == 2
    assert list(study.prompts.values_list("external_id", flat=True)) == ["q0"]
    assert study.comparisons.count() == 1
    assert Response.objects.filter(prompt__study=study).count() == 2


def test_all_pairs_compares_every_pair_and_needs_no_reference(example):
    add_vicuna(example)
    edit(example, 'pairing = "vs_reference"', 'pairing = "all_pairs"')
    edit(example, 'role = "reference"', 'role = "candidate"')
    run(example)
    study = Study.objects.get(slug=SLUG)
    assert study.comparisons.count() == 9  # 3 prompts x 3 pairs
    assert not study.systems.filter(role="reference").exists()

    # An unstated pairing is the stored one, so the file without a reference stays valid.
    edit(example, 'pairing = "all_pairs"', "")
    before = snapshot()
    run(example)
    assert snapshot() == before
