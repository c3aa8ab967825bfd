"""The entry links a researcher pastes into Prolific, Mechanical Turk or an email: pure functions.

Links carry the study's opaque `rater_key`, never its slug: slugs often name the systems
("koala-vs-chatgpt") and a rater sees the address bar. The paths must stay in step with the rater-facing
views that answer them:

    /r/<rater_key>/prolific?PROLIFIC_PID=..&STUDY_ID=..&SESSION_ID=..
    /r/<rater_key>/mturk          (MTurk appends workerId, assignmentId, hitId, turkSubmitTo itself)
    /r/<rater_key>/go?code=<rater code>
"""
from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote, urlencode
from xml.sax.saxutils import escape

from evalsite.studies.models import Study

# Prolific substitutes these placeholders when it sends a participant to the study URL; they must reach
# Prolific exactly as written, so they are not URL-encoded.
PROLIFIC_QUERY = "PROLIFIC_PID={{%PROLIFIC_PID%}}&STUDY_ID={{%STUDY_ID%}}&SESSION_ID={{%SESSION_ID%}}"

MTURK_EXTERNAL_QUESTION_XMLNS = (
    "http://mechanicalturk.amazonaws.com/AWSMechanicalTurkDataSchemas/2006-07-14/ExternalQuestion.xsd"
)


@dataclass(frozen=True)
class EntryLink:
    kind: str  # the first word of the `links` command's line: generic, prolific, mturk (audit later)
    label: str
    url: str


def new_rater_code() -> str:
    """An unguessable code for one generic-link rater: whoever holds it rates as that rater."""
    return secrets.token_urlsafe(12)


def _study_base(study: Study, base_url: str) -> str:
    return f"{base_url.rstrip('/')}/r/{quote(study.rater_key, safe='')}"


def generic_link(study: Study, base_url: str, code: str | None = None) -> str:
    """A link for one person; each call without `code` makes a new rater."""
    return f"{_study_base(study, base_url)}/go?{urlencode({'code': code or new_rater_code()})}"


def prolific_link(study: Study, base_url: str) -> str:
    return f"{_study_base(study, base_url)}/prolific?{PROLIFIC_QUERY}"


def mturk_link(study: Study, base_url: str) -> str:
    """The ExternalQuestion URL: MTurk adds the worker's and the HIT's parameters when it frames the page."""
    return f"{_study_base(study, base_url)}/mturk"


def mturk_external_question(url: str, frame_height: int = 0) -> str:
    """The ExternalQuestion XML a HIT is created with (frame height 0: MTurk sizes the frame to the window)."""
    return (f'<ExternalQuestion xmlns="{MTURK_EXTERNAL_QUESTION_XMLNS}">'
            f"<ExternalURL>{escape(url)}</ExternalURL><FrameHeight>{int(frame_height)}</FrameHeight>"
            "</ExternalQuestion>")


# The links in the order `manage.py links` prints them. The expert audit link (`audit URL`) joins this list
# when audits exist: add its builder here and both the command and the researcher page show it.
LINK_BUILDERS: list[tuple[str, str, Callable[[Study, str], str]]] = [
    ("generic", "Generic link (one per person)", generic_link),
    ("prolific", "Prolific study URL", prolific_link),
    ("mturk", "Mechanical Turk ExternalQuestion URL", mturk_link),
]


def entry_links(study: Study, base_url: str) -> list[EntryLink]:
    """Every entry link of the study; the generic one carries a fresh rater code each time."""
    return [EntryLink(kind, label, build(study, base_url)) for kind, label, build in LINK_BUILDERS]
