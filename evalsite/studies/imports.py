"""Reading prompt and response files (JSONL or CSV) into validated rows.

Nothing here touches the database: the services check rows against the study and store them. Every problem
becomes a RowError naming the line, the field and what is wrong, and all of them are collected so a
researcher can fix a file in one pass instead of one error at a time.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

MESSAGE_ROLES = ("system", "user", "assistant")
MAX_EXTERNAL_ID = 200
MAX_CATEGORY = 100
MAX_SYSTEM_NAME = 100

PROMPT_CSV_COLUMNS = ("id", "prompt", "category")
RESPONSE_CSV_COLUMNS = ("prompt_id", "system", "text")


@dataclass(frozen=True)
class RowError:
    line: int | None  # 1-based physical line in the file; None for a problem with the whole file
    field: str | None
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}" if self.line is not None else "file"
        if self.field:
            where += f", field '{self.field}'"
        return f"{where}: {self.message}"


class ImportRejected(Exception):
    """The file was refused as a whole; nothing from it was stored."""

    def __init__(self, errors: list[RowError], *, filename: str = ""):
        self.errors = errors
        self.filename = filename
        super().__init__(self.summary())

    def summary(self, limit: int = 20) -> str:
        head = f"{self.filename or 'The file'} was not imported ({len(self.errors)} problem"
        head += "s" if len(self.errors) != 1 else ""
        head += "); nothing from it was stored."
        lines = [head] + [f"  {e}" for e in self.errors[:limit]]
        if len(self.errors) > limit:
            lines.append(f"  ... and {len(self.errors) - limit} more")
        return "\n".join(lines)


@dataclass
class PromptRow:
    line: int
    external_id: str
    text: str = ""
    messages: list[dict] | None = None
    category: str = ""


@dataclass
class ResponseRow:
    line: int
    prompt_id: str
    system: str
    text: str
    meta: dict = field(default_factory=dict)


@dataclass
class DecodedFile:
    text: str
    sha256: str
    size: int
    format: str  # "jsonl" or "csv"


def decode_upload(data: bytes, *, filename: str, max_bytes: int) -> DecodedFile:
    """Check size and encoding and decide the format; raise ImportRejected with a file-level error."""
    if len(data) > max_bytes:
        raise ImportRejected(
            [RowError(None, None, f"the file is {len(data):,} bytes, over the limit of {max_bytes:,} bytes "
                      "(IMPORT_MAX_BYTES); split it into smaller files")],
            filename=filename,
        )
    if not data.strip():
        raise ImportRejected([RowError(None, None, "the file is empty")], filename=filename)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ImportRejected(
            [RowError(line, None, f"not valid UTF-8 (byte 0x{data[exc.start]:02x} at column {column}); "
                      "save the file as UTF-8")],
            filename=filename,
        ) from None
    if text.startswith("\ufeff"):  # a BOM from spreadsheet exports is not part of the first field
        text = text[1:]
    return DecodedFile(text=text, sha256=hashlib.sha256(data).hexdigest(), size=len(data),
                       format=detect_format(filename, text))


def detect_format(filename: str, text: str) -> str:
    name = filename.lower()
    if name.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    if name.endswith((".csv", ".tsv")):
        return "csv"
    return "jsonl" if text.lstrip().startswith("{") else "csv"


def iter_jsonl(text: str, errors: list[RowError]) -> Iterator[tuple[int, dict]]:
    """Yield (line number, object) per non-blank line; bad lines become errors.

    Split on "\\n" only: str.splitlines() would also split on U+2028 and friends, which JSON allows raw
    inside strings, and would corrupt such text.
    """
    for number, raw in enumerate(text.split("\n"), start=1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as exc:
            errors.append(RowError(number, None, f"invalid JSON: {exc.msg} at column {exc.colno}"))
            continue
        if not isinstance(obj, dict):
            errors.append(RowError(number, None, f"expected a JSON object, got {_json_type(obj)}"))
            continue
        yield number, obj


def iter_csv(text: str, columns: tuple[str, ...], required: tuple[str, ...], errors: list[RowError]
             ) -> Iterator[tuple[int, dict]]:
    """Yield (line number where the record starts, row dict); a wrong header is one file-level error."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader)
    except StopIteration:
        errors.append(RowError(1, None, "the CSV file has no header row"))
        return
    except csv.Error as exc:
        errors.append(RowError(1, None, f"malformed CSV: {exc}"))
        return
    header = [h.strip() for h in header]
    expected = ", ".join(columns)
    unknown = [h for h in header if h not in columns]
    missing = [c for c in required if c not in header]
    duplicated = sorted({h for h in header if header.count(h) > 1})
    if unknown or missing or duplicated:
        problems = []
        if missing:
            problems.append("missing " + ", ".join(missing))
        if unknown:
            problems.append("unknown " + ", ".join(repr(u) for u in unknown))
        if duplicated:
            problems.append("repeated " + ", ".join(duplicated))
        errors.append(RowError(1, None, f"wrong CSV header ({'; '.join(problems)}): expected columns {expected}"))
        return
    start = reader.line_num + 1
    while True:
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            errors.append(RowError(start, None, f"malformed CSV: {exc}"))
            return
        line, start = start, reader.line_num + 1
        if not any(v.strip() for v in values):
            continue
        if len(values) != len(header):
            errors.append(RowError(line, None, f"has {len(values)} columns, the header has {len(header)}"))
            continue
        yield line, dict(zip(header, values, strict=True))


def parse_prompts(decoded: DecodedFile) -> tuple[list[PromptRow], list[RowError]]:
    errors: list[RowError] = []
    if decoded.format == "csv":
        records = iter_csv(decoded.text, PROMPT_CSV_COLUMNS, ("id", "prompt"), errors)
    else:
        records = iter_jsonl(decoded.text, errors)
    rows: list[PromptRow] = []
    first_seen: dict[str, int] = {}
    for line, record in records:
        row = _prompt_row(line, record, errors)
        if row is None:
            continue
        if row.external_id in first_seen:
            errors.append(RowError(line, "id", f"duplicate id {row.external_id!r} (first on line "
                                               f"{first_seen[row.external_id]})"))
            continue
        first_seen[row.external_id] = line
        rows.append(row)
    if not rows and not errors:
        errors.append(RowError(None, None, "the file has no prompts"))
    return rows, errors


def parse_responses(decoded: DecodedFile) -> tuple[list[ResponseRow], list[RowError]]:
    errors: list[RowError] = []
    if decoded.format == "csv":
        records = iter_csv(decoded.text, RESPONSE_CSV_COLUMNS, RESPONSE_CSV_COLUMNS, errors)
    else:
        records = iter_jsonl(decoded.text, errors)
    rows: list[ResponseRow] = []
    first_seen: dict[tuple[str, str], int] = {}
    for line, record in records:
        row = _response_row(line, record, errors)
        if row is None:
            continue
        key = (row.prompt_id, row.system)
        if key in first_seen:
            errors.append(RowError(line, "prompt_id", f"duplicate response of system {row.system!r} to prompt "
                                                      f"{row.prompt_id!r} (first on line {first_seen[key]})"))
            continue
        first_seen[key] = line
        rows.append(row)
    if not rows and not errors:
        errors.append(RowError(None, None, "the file has no responses"))
    return rows, errors


def _prompt_row(line: int, record: dict[str, Any], errors: list[RowError]) -> PromptRow | None:
    count = len(errors)
    external_id = _identifier(line, record, "id", MAX_EXTERNAL_ID, errors)
    category = _optional_string(line, record, "category", MAX_CATEGORY, errors)
    has_prompt = record.get("prompt") not in (None, "")
    has_messages = record.get("messages") not in (None, "", [])
    text, messages = "", None
    if has_prompt and has_messages:
        errors.append(RowError(line, "prompt", "give either 'prompt' or 'messages', not both"))
    elif has_messages:
        messages = _messages(line, record["messages"], errors)
    elif "prompt" in record or "messages" not in record:
        text = _required_text(line, record, "prompt", errors) or ""
    else:
        errors.append(RowError(line, "messages", "is empty"))
    if len(errors) > count:
        return None
    return PromptRow(line=line, external_id=external_id, text=text, messages=messages, category=category)


def _response_row(line: int, record: dict[str, Any], errors: list[RowError]) -> ResponseRow | None:
    count = len(errors)
    prompt_id = _identifier(line, record, "prompt_id", MAX_EXTERNAL_ID, errors)
    system = _identifier(line, record, "system", MAX_SYSTEM_NAME, errors)
    text = _required_text(line, record, "text", errors)
    meta = record.get("meta", {})
    if meta is None:
        meta = {}
    if not isinstance(meta, dict):
        errors.append(RowError(line, "meta", f"must be a JSON object, got {_json_type(meta)}"))
    if len(errors) > count:
        return None
    return ResponseRow(line=line, prompt_id=prompt_id, system=system, text=text, meta=meta)


def _identifier(line: int, record: dict, name: str, max_length: int, errors: list[RowError]) -> str:
    value = record.get(name)
    if value is None:
        errors.append(RowError(line, name, "is missing"))
        return ""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)  # numeric ids are common in hand-made files
    if not isinstance(value, str):
        errors.append(RowError(line, name, f"must be a string, got {_json_type(value)}"))
        return ""
    if not value.strip():
        errors.append(RowError(line, name, "is empty"))
        return ""
    if value != value.strip():
        errors.append(RowError(line, name, f"{value!r} has leading or trailing spaces"))
        return ""
    if len(value) > max_length:
        errors.append(RowError(line, name, f"is {len(value)} characters long; the limit is {max_length}"))
        return ""
    return value


def _required_text(line: int, record: dict, name: str, errors: list[RowError]) -> str:
    value = record.get(name)
    if value is None:
        errors.append(RowError(line, name, "is missing"))
        return ""
    if not isinstance(value, str):
        errors.append(RowError(line, name, f"must be a string, got {_json_type(value)}"))
        return ""
    if not value.strip():
        errors.append(RowError(line, name, "is empty"))
        return ""
    return value  # kept byte for byte: no stripping or normalisation of model text


def _optional_string(line: int, record: dict, name: str, max_length: int, errors: list[RowError]) -> str:
    value = record.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        errors.append(RowError(line, name, f"must be a string, got {_json_type(value)}"))
        return ""
    value = value.strip()
    if len(value) > max_length:
        errors.append(RowError(line, name, f"is {len(value)} characters long; the limit is {max_length}"))
        return ""
    return value


def _messages(line: int, value: Any, errors: list[RowError]) -> list[dict] | None:
    if not isinstance(value, list):
        errors.append(RowError(line, "messages", f"must be a list of messages, got {_json_type(value)}"))
        return None
    cleaned = []
    for index, message in enumerate(value):
        where = f"messages[{index}]"
        if not isinstance(message, dict):
            errors.append(RowError(line, where, f"must be an object with role and content, got {_json_type(message)}"))
            return None
        role, content = message.get("role"), message.get("content")
        if role not in MESSAGE_ROLES:
            errors.append(RowError(line, f"{where}.role", f"must be one of {', '.join(MESSAGE_ROLES)}; got {role!r}"))
            return None
        if not isinstance(content, str) or not content.strip():
            errors.append(RowError(line, f"{where}.content", "is missing or empty"))
            return None
        cleaned.append({"role": role, "content": content})
    if cleaned[-1]["role"] != "user":
        errors.append(RowError(line, "messages", "the conversation must end with a user message"))
        return None
    return cleaned


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__
