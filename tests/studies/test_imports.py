"""Import of prompts and responses: all or nothing, one precise error per bad line, text kept byte for byte."""
import json

import pytest
from django.core.management import CommandError, call_command

from evalsite.studies.imports import ImportRejected
from evalsite.studies.models import Comparison, ImportBatch, Prompt, Response
from evalsite.studies.services import comparisons_build, prompts_import, responses_import
from tests.factories import PromptFactory, SystemFactory

pytestmark = pytest.mark.django_db


def jsonl(*objects) -> bytes:
    return ("\n".join(json.dumps(o, ensure_ascii=False) for o in objects) + "\n").encode()


def rejected(call) -> list[str]:
    with pytest.raises(ImportRejected) as info:
        call()
    return [str(e) for e in info.value.errors]


def test_koala_style_file_imports_as_is(study):
    data = b'{"id": "koala_0", "prompt": "Can you list the top 20 films?"}\n' \
           b'{"id": "koala_1", "prompt": "Take MLK speech \\"I had a dream\\" but turn it into a rap song"}\n'
    result = prompts_import(study=study, data=data, filename="koala_test_set.jsonl")
    assert (result.created, result.updated) == (2, 0)
    assert list(study.prompts.values_list("external_id", "text")) == [
        ("koala_0", "Can you list the top 20 films?"),
        ("koala_1", 'Take MLK speech "I had a dream" but turn it into a rap song'),
    ]


def test_unicode_multiline_and_long_prompts_survive_byte_for_byte(study):
    long_text = ("Zürich naïve — 東京 🎉 " * 1000)[:20_000]
    tricky = "line one\r\nline two\n\n  indented\tand tabbed  \u2028separator\u00a0nbsp "
    data = jsonl({"id": "long", "prompt": long_text}, {"id": "tricky", "prompt": tricky, "category": "edge"})
    prompts_import(study=study, data=data, filename="p.jsonl")
    stored = dict(Prompt.objects.filter(study=study).values_list("external_id", "text"))
    assert stored["long"] == long_text and len(stored["long"]) == 20_000
    assert stored["tricky"].encode() == tricky.encode()


def test_multi_turn_prompts_keep_their_messages(study):
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "Capital of Peru?"}]
    prompts_import(study=study, data=jsonl({"id": "conv", "messages": messages, "category": "chat"}), filename="p.jsonl")
    prompt = study.prompts.get()
    assert prompt.messages == messages and prompt.is_multi_turn and prompt.preview == "Capital of Peru?"


def test_csv_prompts_with_quoted_multiline_field_and_bom(study):
    data = '\ufeffid,prompt,category\np1,"first line\nsecond line, with comma",science\np2,plain,\n'.encode()
    prompts_import(study=study, data=data, filename="prompts.csv")
    assert dict(study.prompts.values_list("external_id", "text")) == {
        "p1": "first line\nsecond line, with comma", "p2": "plain"}
    assert study.prompts.get(external_id="p1").category == "science"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b'{"id": "a", "prompt": "ok"}\n{"id": "b", "prompt": "unterminated}\n', "line 2: invalid JSON"),
        (b'{"id": "a", "prompt": "ok"}\n["not", "an", "object"]\n', "line 2: expected a JSON object, got a list"),
        (b'{"id": "a", "prompt": "ok"}\n{"prompt": "no id"}\n', "line 2, field 'id': is missing"),
        (b'{"id": "a", "prompt": "ok"}\n{"id": "b"}\n', "line 2, field 'prompt': is missing"),
        (b'{"id": "a", "prompt": "ok"}\n{"id": "b", "prompt": "   "}\n', "line 2, field 'prompt': is empty"),
        (b'{"id": "a", "prompt": "ok"}\n{"id": "", "prompt": "x"}\n', "line 2, field 'id': is empty"),
        (b'{"id": "a", "prompt": "ok"}\n{"id": "b", "prompt": 42}\n', "line 2, field 'prompt': must be a string"),
        (b'{"id": "a", "prompt": "ok"}\n\n{"id": "a", "prompt": "again"}\n',
         "line 3, field 'id': duplicate id 'a' (first on line 1)"),
        (b'{"id": "a", "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "r"}]}\n',
         "line 1, field 'messages': the conversation must end with a user message"),
        (b'{"id": "a", "messages": [{"role": "robot", "content": "q"}]}\n', "line 1, field 'messages[0].role'"),
        (b'{"id": "a", "prompt": "x", "messages": [{"role": "user", "content": "q"}]}\n',
         "line 1, field 'prompt': give either 'prompt' or 'messages', not both"),
        (b'id,text,category\na,hello,x\n', "line 1: wrong CSV header (missing prompt; unknown 'text')"),
        (b'id,prompt\na,"ok"\nb,\n', "line 3, field 'prompt': is empty"),
        (b'id,prompt\na,one,extra\n', "line 2: has 3 columns, the header has 2"),
        (b'{"id": "a", "prompt": "caf\xe9"}\n', "line 1: not valid UTF-8 (byte 0xe9 at column 27)"),
        (b'\n  \n', "file: the file is empty"),
    ],
)
def test_bad_prompt_file_names_line_and_field_and_stores_nothing(study, content, expected):
    name = "prompts.csv" if content.startswith(b"id,") else "prompts.jsonl"
    errors = rejected(lambda: prompts_import(study=study, data=content, filename=name))
    assert any(e.startswith(expected) for e in errors), errors
    assert Prompt.objects.count() == 0 and ImportBatch.objects.count() == 0


def test_every_bad_line_is_reported_not_only_the_first(study):
    data = b'{"id": "a", "prompt": ""}\n{"id": "b"}\nnot json\n{"id": "c", "prompt": "fine"}\n'
    errors = rejected(lambda: prompts_import(study=study, data=data, filename="p.jsonl"))
    assert [e.split(":")[0] for e in errors] == ["line 1, field 'prompt'", "line 2, field 'prompt'", "line 3"]
    assert not Prompt.objects.exists()


def test_not_utf8_error_names_the_line_of_the_bad_byte(study):
    data = jsonl({"id": "a", "prompt": "fine"}) + b'{"id": "b", "prompt": "\xff"}\n'
    assert rejected(lambda: prompts_import(study=study, data=data, filename="p.jsonl"))[0].startswith(
        "line 2: not valid UTF-8")


def test_file_over_the_size_limit_is_refused(study, settings):
    settings.IMPORT_MAX_BYTES = 2048
    data = jsonl(*({"id": f"p{i}", "prompt": "x" * 100} for i in range(30)))
    [error] = rejected(lambda: prompts_import(study=study, data=data, filename="p.jsonl"))
    assert "over the limit of 2,048 bytes" in error and error.startswith("file:")
    assert not Prompt.objects.exists()


def test_id_already_in_the_study_is_refused_with_line(study):
    PromptFactory(study=study, external_id="koala_1", text="old")
    data = jsonl({"id": "koala_0", "prompt": "new"}, {"id": "koala_1", "prompt": "changed"})
    errors = rejected(lambda: prompts_import(study=study, data=data, filename="p.jsonl"))
    assert errors == ["line 2, field 'id': id 'koala_1' is already in the study; import with replace to overwrite it"]
    assert list(study.prompts.values_list("external_id", "text")) == [("koala_1", "old")]


def test_reimporting_the_same_file_is_refused_then_replace_is_explicit(study):
    data = jsonl({"id": "a", "prompt": "one"}, {"id": "b", "prompt": "two"})
    prompts_import(study=study, data=data, filename="p.jsonl")
    [error] = rejected(lambda: prompts_import(study=study, data=data, filename="again.jsonl"))
    assert "this exact file was already imported as 'p.jsonl'" in error and "replace" in error
    result = prompts_import(study=study, data=data, filename="again.jsonl", replace=True)
    assert (result.created, result.updated, result.unchanged) == (0, 0, 2)
    changed = jsonl({"id": "a", "prompt": "one, revised"}, {"id": "c", "prompt": "three"})
    result = prompts_import(study=study, data=changed, filename="v2.jsonl", replace=True)
    assert (result.created, result.updated, result.unchanged) == (1, 1, 0)
    assert dict(study.prompts.values_list("external_id", "text")) == {"a": "one, revised", "b": "two", "c": "three"}


def test_replace_refuses_to_change_the_text_of_a_judged_prompt(study):
    reference = SystemFactory(study=study, name="ref", role="reference")
    candidate = SystemFactory(study=study, name="cand")
    prompts_import(study=study, data=jsonl({"id": "a", "prompt": "one"}), filename="p.jsonl")
    responses_import(study=study, filename="r.jsonl", data=jsonl(
        {"prompt_id": "a", "system": "ref", "text": "r"}, {"prompt_id": "a", "system": "cand", "text": "c"}))
    comparisons_build(study=study)
    Comparison.objects.update(judgments_done=2)
    errors = rejected(lambda: prompts_import(study=study, data=jsonl({"id": "a", "prompt": "other"}),
                                             filename="p2.jsonl", replace=True))
    assert errors == ["line 1, field 'prompt': prompt 'a' already has judgments; changing its text would invalidate them"]
    errors = rejected(lambda: responses_import(study=study, data=jsonl({"prompt_id": "a", "system": "cand", "text": "x"}),
                                               filename="r2.jsonl", replace=True))
    assert "already has judgments" in errors[0] and errors[0].startswith("line 1, field 'text'")
    assert study.prompts.get().text == "one" and Response.objects.get(system=candidate).text == "c"
    assert reference.responses.count() == 1


@pytest.fixture
def study_with_prompts(study):
    SystemFactory(study=study, name="chatgpt", role="reference")
    SystemFactory(study=study, name="koala-13b")
    prompts_import(study=study, data=jsonl({"id": "koala_0", "prompt": "q0"}, {"id": "koala_1", "prompt": "q1"}),
                   filename="prompts.jsonl")
    return study


def test_responses_import_with_provenance(study_with_prompts):
    text = "**Bold** answer\n\n```python\nprint('hi')\n```\nÜnïcödé ✓"
    data = jsonl({"prompt_id": "koala_0", "system": "koala-13b", "text": text,
                  "meta": {"model": "koala-13b-v2", "seed": 7, "sampling_params": {"temperature": 0.7},
                           "finish_reason": "stop", "note": "kept"}},
                 {"prompt_id": "koala_1", "system": "koala-13b", "text": "plain"})
    result = responses_import(study=study_with_prompts, data=data, filename="koala.jsonl")
    assert result.created == 2
    response = Response.objects.get(prompt__external_id="koala_0")
    assert response.text == text
    assert (response.model_name, response.seed, response.finish_reason) == ("koala-13b-v2", 7, "stop")
    assert response.sampling_params == {"temperature": 0.7} and response.meta["note"] == "kept"
    assert response.import_batch == result.batch


def test_responses_csv(study_with_prompts):
    data = b'prompt_id,system,text\nkoala_0,chatgpt,"multi\nline"\nkoala_1,chatgpt,short\n'
    responses_import(study=study_with_prompts, data=data, filename="chatgpt.csv")
    assert Response.objects.get(prompt__external_id="koala_0").text == "multi\nline"


@pytest.mark.parametrize(
    ("bad_lines", "expected"),
    [
        ([{"prompt_id": "koala_9", "system": "chatgpt", "text": "x"}],
         "line 2, field 'prompt_id': unknown prompt id 'koala_9'"),
        ([{"prompt_id": "koala_0", "system": "vicuna", "text": "x"}],
         "line 2, field 'system': system 'vicuna' is not in the study (systems: chatgpt, koala-13b)"),
        ([{"prompt_id": "koala_0", "system": "chatgpt"}], "line 2, field 'text': is missing"),
        ([{"prompt_id": "koala_0", "system": "chatgpt", "text": ""}], "line 2, field 'text': is empty"),
        ([{"system": "chatgpt", "text": "x"}], "line 2, field 'prompt_id': is missing"),
        ([{"prompt_id": "koala_0", "system": "chatgpt", "text": "x", "meta": [1]}],
         "line 2, field 'meta': must be a JSON object"),
        ([{"prompt_id": "koala_0", "system": "chatgpt", "text": "x"},
          {"prompt_id": "koala_0", "system": "chatgpt", "text": "y"}],
         "line 3, field 'prompt_id': duplicate response of system 'chatgpt' to prompt 'koala_0' (first on line 2)"),
    ],
)
def test_bad_responses_file_names_line_and_field_and_stores_nothing(study_with_prompts, bad_lines, expected):
    data = jsonl({"prompt_id": "koala_1", "system": "chatgpt", "text": "a good first line"}, *bad_lines)
    errors = rejected(lambda: responses_import(study=study_with_prompts, data=data, filename="r.jsonl"))
    assert any(e.startswith(expected) for e in errors), errors
    assert not Response.objects.exists()
    assert not ImportBatch.objects.filter(kind="responses").exists()


def test_responses_csv_with_wrong_header(study_with_prompts):
    errors = rejected(lambda: responses_import(study=study_with_prompts, data=b"prompt,system,text\nkoala_0,chatgpt,x\n",
                                               filename="r.csv"))
    assert errors == ["line 1: wrong CSV header (missing prompt_id; unknown 'prompt'): expected columns prompt_id, system, text"]


def test_response_already_in_the_study_is_refused_without_replace(study_with_prompts):
    responses_import(study=study_with_prompts, filename="a.jsonl",
                     data=jsonl({"prompt_id": "koala_0", "system": "chatgpt", "text": "first"}))
    errors = rejected(lambda: responses_import(study=study_with_prompts, filename="b.jsonl",
                                               data=jsonl({"prompt_id": "koala_0", "system": "chatgpt", "text": "second"})))
    assert errors == ["line 1, field 'prompt_id': system 'chatgpt' already has a response to 'koala_0'; "
                      "import with replace to overwrite it"]
    responses_import(study=study_with_prompts, filename="b.jsonl", replace=True,
                     data=jsonl({"prompt_id": "koala_0", "system": "chatgpt", "text": "second"}))
    assert Response.objects.get().text == "second"


def test_prompts_of_another_study_are_not_found(study_with_prompts):
    other = SystemFactory(name="chatgpt", role="reference").study
    errors = rejected(lambda: responses_import(study=other, filename="r.jsonl",
                                               data=jsonl({"prompt_id": "koala_0", "system": "chatgpt", "text": "x"})))
    assert errors == ["line 1, field 'prompt_id': unknown prompt id 'koala_0': import it with the prompts first"]


def test_import_commands_report_progress_and_errors(study, tmp_path, capsys):
    SystemFactory(study=study, name="chatgpt", role="reference")
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_bytes(jsonl(*({"id": f"koala_{i}", "prompt": f"q{i}"} for i in range(5))))
    call_command("import_prompts", study.slug, str(prompts))
    assert "Imported 5 rows from prompts.jsonl: 5 added" in capsys.readouterr().out
    responses = tmp_path / "chatgpt.jsonl"
    responses.write_bytes(jsonl({"prompt_id": "koala_0", "system": "chatgpt", "text": "a"},
                                {"prompt_id": "nope", "system": "chatgpt", "text": "b"}))
    with pytest.raises(CommandError) as info:
        call_command("import_responses", study.slug, str(responses), "--no-progress")
    assert "line 2, field 'prompt_id': unknown prompt id 'nope'" in str(info.value)
    assert not Response.objects.exists()
    with pytest.raises(CommandError, match="No study with slug 'missing'"):
        call_command("import_prompts", "missing", str(prompts))


@pytest.mark.parametrize(
    ("text", "flag"),
    [
        ("As ChatGPT, I cannot browse the web.", "ChatGPT"),
        ("I am LLaMA, a model by Meta.", "LLaMA"),
        ("As an AI language model, I don't have opinions.", "As an AI language model"),
        ("I was trained by OpenAI.", "trained by OpenAI"),
        ("The capital of Peru is Lima.", ""),
        ("Koalas sleep up to 20 hours a day.", ""),  # the plural animal is not the model name
    ],
)
def test_responses_that_name_a_model_are_flagged(study_with_prompts, text, flag):
    responses_import(study=study_with_prompts, filename="r.jsonl",
                     data=jsonl({"prompt_id": "koala_0", "system": "koala-13b", "text": text}))
    assert Response.objects.get().names_model == flag
