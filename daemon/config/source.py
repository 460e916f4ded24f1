"""YAML with the line of every key, and ``${ENV}`` interpolation."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from .issues import ConfigError, ConfigIssue, KeyPath


@dataclass(frozen=True)
class SourceMap:
    """Line numbers (1-based) of every key path in one file."""

    file: str
    lines: Mapping[KeyPath, int]

    def line_of(self, path: Sequence[str | int]) -> int | None:
        """The line of `path`, or of its nearest ancestor that appears in the file."""
        path = tuple(path)
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return None

    def issue(self, path: Sequence[str | int], message: str) -> ConfigIssue:
        return ConfigIssue(self.file, self.line_of(path), tuple(path), message)


def _scalar(node: yaml.Node) -> Any:
    return yaml.SafeLoader("").construct_object(node, deep=True)


def _construct(node: yaml.Node, path: KeyPath, lines: dict[KeyPath, int]) -> Any:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        yaml.SafeLoader("").flatten_mapping(node)  # resolve `<<: *anchor` merges
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _scalar(key_node)
            key_path = (*path, str(key))
            lines[key_path] = key_node.start_mark.line + 1
            out[key] = _construct(value_node, key_path, lines)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_construct(item, (*path, i), lines) for i, item in enumerate(node.value)]
    return _scalar(node)


def parse_yaml(text: str, file: str) -> tuple[Any, SourceMap]:
    """Parse YAML, keeping the line of every key. Syntax errors become ConfigErrors."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError([ConfigIssue(file, line, (), f"invalid YAML: {problem}")]) from None
    lines: dict[KeyPath, int] = {}
    data = {} if node is None else _construct(node, (), lines)
    return data, SourceMap(file, lines)


_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def interpolate(data: Any, env: Mapping[str, str], source: SourceMap) -> Any:
    """Replace ``${VAR}`` and ``${VAR:-default}`` in every string; unset without default = error."""
    issues: list[ConfigIssue] = []

    def sub(value: str, path: KeyPath) -> str:
        def one(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in env:
                return env[name]
            if default is not None:
                return default
            issues.append(source.issue(path, f"environment variable {name} is not set"))
            return ""

        return _ENV_REF.sub(one, value)

    def walk(node: Any, path: KeyPath) -> Any:
        if isinstance(node, str):
            return sub(node, path)
        if isinstance(node, dict):
            return {k: walk(v, (*path, str(k))) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v, (*path, i)) for i, v in enumerate(node)]
        return node

    result = walk(data, ())
    if issues:
        raise ConfigError(issues)
    return result
