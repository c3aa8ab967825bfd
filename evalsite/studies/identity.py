"""Spotting responses that name a model or a vendor ("As ChatGPT, I...", "I am LLaMA").

Such a response tells a rater which system wrote it and breaks the blinding, so it is flagged for the
researcher (never silently dropped or edited: the researcher decides). Matching is on whole words, case-
insensitive; a false alarm ("koala bears") costs a glance, a miss costs a biased study.
"""
from __future__ import annotations

import re

MODEL_AND_VENDOR_NAMES = (
    "ChatGPT", "GPT-3", "GPT-3.5", "GPT-4", "GPT-4o", "GPT", "OpenAI", "InstructGPT",
    "LLaMA", "Llama 2", "Llama 3", "Meta AI", "Alpaca", "Vicuna", "Koala", "Dolly", "Guanaco", "WizardLM",
    "Claude", "Anthropic", "Bard", "Gemini", "PaLM", "Google DeepMind", "Mistral", "Mixtral", "Qwen",
    "DeepSeek", "Falcon", "MPT", "Phi-3", "Gemma", "Grok", "xAI", "Cohere", "Command R",
)
SELF_DESCRIPTIONS = (
    r"as an? (?:ai|artificial intelligence) (?:language )?model",
    r"i am an? (?:ai|artificial intelligence) (?:language )?model",
    r"i'?m an? (?:ai|artificial intelligence) (?:language )?model",
    r"(?:trained|developed|created|made) by [A-Z][\w ]{1,30}",
)

_NAMES = "|".join(re.escape(name) for name in sorted(MODEL_AND_VENDOR_NAMES, key=len, reverse=True))
_PATTERN = re.compile(rf"(?<![\w-])(?:{_NAMES})(?![\w-])|{'|'.join(SELF_DESCRIPTIONS)}", re.IGNORECASE)


def find_model_mention(text: str) -> str:
    """The first phrase in `text` that names a model or vendor or calls itself an AI model, or ""."""
    match = _PATTERN.search(text)
    return match.group(0)[:200] if match else ""
