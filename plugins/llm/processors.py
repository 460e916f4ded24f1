"""LLM processors: small plugins that change what an LLM plugin sends and receives.

Enabled per LLM plugin (`plugins.llm.groq.processors: [name, …]` or `{name: settings}`),
found through the `genred.llm_processors` entry-point group, applied in the order listed.
The protocol is `genred.api.LLMProcessor`, the loader `genred.api.load_processors`;
every hook is optional. Their names are
part of the LLM's `name`, so answers cached under one set of processors are not reused
under another.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from genred.api import PluginEntry


def apply_to_messages(processors: Sequence[Any], messages: list[dict[str, str]]) -> list[dict]:
    """System extensions appended to the system message (one is added if there is none),
    then every user message through each `process_prompt`."""
    out = [dict(m) for m in messages]
    extensions = [
        text
        for p in processors
        if hasattr(p, "system_extension") and (text := str(p.system_extension() or "").strip())
    ]
    if extensions:
        extra = "\n\n".join(extensions)
        if out and out[0].get("role") == "system":
            out[0]["content"] = f"{out[0].get('content', '')}\n\n{extra}".strip()
        else:
            out.insert(0, {"role": "system", "content": extra})
    for processor in processors:
        if hasattr(processor, "process_prompt"):
            for message in out:
                if message.get("role") == "user":
                    message["content"] = str(processor.process_prompt(message["content"]))
    return out


def apply_to_reply(processors: Sequence[Any], text: str) -> str:
    """The reply's text through each `process_response`, before it is parsed."""
    for processor in processors:
        if hasattr(processor, "process_response"):
            text = str(processor.process_response(text))
    return text


def processor_names(entries: Sequence[PluginEntry]) -> list[str]:
    return [e.name for e in entries if e.enabled]
