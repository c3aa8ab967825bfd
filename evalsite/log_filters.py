"""Logging filters."""
from __future__ import annotations

import logging
import re
from collections.abc import Mapping

# A rater's token in their page addresses is their session: whoever reads it can rate as them.
_RATER_TOKEN = re.compile(r"(/r/t/)[^/\s?\"']+")


class RedactRaterTokens(logging.Filter):
    """Replace rater session tokens in log lines (e.g. Django's "Not Found: /r/t/<token>/rate")."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = _redact(record.msg)
        if isinstance(record.args, Mapping):
            record.args = {key: _redact(value) for key, value in record.args.items()}
        elif isinstance(record.args, tuple):
            record.args = tuple(_redact(value) for value in record.args)
        return True


def _redact(value):
    return _RATER_TOKEN.sub(r"\1[token]", value) if isinstance(value, str) else value
