"""The entry links a researcher pastes into Prolific, Mechanical Turk or an email: pure functions, except
the experts' audit link, which looks up whether the study has an audit plan.

Links carry the study's opaque `rater_key`, never its slug: slugs often name the systems
("koala-vs-chatgpt") and a rater sees the address bar. The paths must stay in step with the rater-facing
views that answer them:

    /r/<rater_key>/prolific?PROLIFIC_PID=..&STUDY_ID=..&SESSION_ID=..
    /r/<rater_key>/mturk          (MTurk appends workerId, assignmentId, hitId, turkSubmitTo itself)
    /r/<rater_key>/go?code=<rater code>
    /audit/<audit plan key>/      (experts, who log in; only once the study has an audit plan)
"""
from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote, urlencode
from xml.sax.saxutils import escape

from evalsite.studies.models import Study
from raters.audits.models import AuditPlan

# Prolific substitutes these placeholders when it sends a participant to the study URL; they must reach
# Prolific exactly as written, so they are not URL-encoded.
PROLIFIC_QUERY = "PROLIFIC_PID={{%PROLIFIC_PID%}}&STUDY_ID={{%STUDY_ID%}}&SESSION_ID={{%SESSION_ID%}}"

MTURK_EXTERNAL_QUESTION_XMLNS = (
    "http://mechanicalturk.amazonaws.com/AWSMechanicalTurkDataSchemas/2006-07-14/ExternalQuestion.xsd"
)


@dataclass(frozen=True)
class EntryLink:
    kind: str  # the first word of the `links` command's line: generic, prolific, mturk, audit
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


def audit_link(study: Study, base_url: str) -> str | None:
    """The experts' entry to the study's audit queue (they log in), once the researcher has planned audits;
    None before. It carries the audit plan's own opaque key, neither the slug nor the raters' key."""
    key = AuditPlan.objects.filter(study=study).values_list("key", flat=True).first()
    return f"{base_url.rstrip('/')}/audit/{quote(key, safe='')}/" if key else None


# The links in the order `manage.py links` prints them. A builder returning None has no link for this study
# (yet): the expert audit link appears once audits exist.
LINK_BUILDERS: list[tuple[str, str, Callable[[Study, str], str | None]]] = [
    ("generic", "Generic link (one per person)", generic_link),
    ("prolific", "Prolific study URL", prolific_link),
    ("mturk", "Mechanical Turk ExternalQuestion URL", mturk_link),
    ("audit", "Expert audit queue (experts log in)", audit_link),
]


def entry_links(study: Study, base_url: str) -> list[EntryLink]:
    """Every entry link of the study; the generic one carries a fresh rater code each time."""
    built = ((kind, label, build(study, base_url)) for kind, label, build in LINK_BUILDERS)
    return [EntryLink(kind, label, url) for kind, label, url in built if url is not None]
