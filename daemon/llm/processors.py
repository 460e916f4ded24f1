"""LLM processors: small plugins that change what an LLM plugin sends and receives.

Enabled per LLM plugin (`plugins.llm.groq.processors: [name, …]` or `{name: settings}`),
found through the `genred.llm_processors` entry-point group, applied in the order listed.
The protocol is `genred.plugins.LLMProcessor`; every hook is optional. Their names are
part of the LLM's `name`, so answers cached under one set of processors are not reused
under another.
"""

from __future__ import annotations

import importlib.metadata as metadata
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from genred.config import PluginEntry
from genred.errors import GenredError

GROUP = "genred.llm_processors"


class ProcessorUnavailable(GenredError):
    """A configured processor is not installed, fails to import, or has bad settings."""


def load_processors(entries: Sequence[PluginEntry], owner: str) -> list[Any]:
    """Build the enabled processors named in `entries` (for the LLM plugin `owner`)."""
    if not entries:
        return []
    found = {ep.name: ep for ep in metadata.entry_points(group=GROUP)}
    built = []
    for entry in entries:
        if not entry.enabled:
            continue
        where = f"plugins.llm.{owner}.processors.{entry.name}"
        ep = found.get(entry.name)
        if ep is None:
            names = ", ".join(sorted(found)) or "none installed"
            raise ProcessorUnavailable(f"{where}: no LLM processor {entry.name!r} ({names})")
        try:
            cls = ep.load()
        except Exception as exc:
            raise ProcessorUnavailable(
                f"{where}: {ep.value} failed to load: {type(exc).__name__}: {exc}"
            ) from None
        model = getattr(cls, "Config", None)
        try:
            settings = model.model_validate(entry.settings) if model else None
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or '(section)'}: {e['msg']}" for e in exc.errors()
            )
            raise ProcessorUnavailable(f"{where}: {problems}") from None
        if settings is None and entry.settings:
            raise ProcessorUnavailable(f"{where}: this processor takes no settings")
        built.append(cls(settings) if model else cls())
    return built


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
