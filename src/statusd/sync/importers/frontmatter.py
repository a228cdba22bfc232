"""YAML front matter the way Backlog.md reads it, and ``## `` sections of a task body.

Backlog.md quotes unquoted ``assignee:`` / ``reporter:`` values before parsing (``@user`` is not
valid plain YAML) and turns ``[@a, b]`` flow lists into quoted ones; timestamps stay text.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from statusd.errors import StatusdError

_FRONT = re.compile(r"\A---\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)", re.DOTALL)
_PEOPLE = re.compile(r"^(\s*(?:assignee|reporter):\s*)(.*)$")
_FLOW = re.compile(r"^\[(.*)\]\s*(#.*)?$")
_MARKER = re.compile(r"^\s*<!--\s*(?:SECTION:[A-Z0-9_]+|AC|DOD|COMMENTS?):(BEGIN|END)\s*-->\s*$")
_HEADING = re.compile(r"^##[ \t]+(.+?)[ \t]*#*[ \t]*$")


class _TextLoader(yaml.SafeLoader):
    """SafeLoader that leaves dates and timestamps as the text written in the file."""


_TextLoader.yaml_implicit_resolvers = {
    key: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


class FrontMatterError(StatusdError, ValueError):
    def __init__(self, line: int, reason: str) -> None:
        super().__init__(f"line {line}: {reason}")
        self.line = line


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _people_line(line: str) -> str:
    match = _PEOPLE.match(line)
    if not match:
        return line
    prefix, value = match.group(1), match.group(2).strip()
    flow = _FLOW.match(value)
    if flow:
        items = [e.strip() for e in flow.group(1).split(",") if e.strip()]
        items = [_quote(e) if e.startswith("@") else e for e in items]
        return f"{prefix}[{', '.join(items)}]" + (f" {flow.group(2)}" if flow.group(2) else "")
    if value and value[0] not in "['\"-":
        return prefix + _quote(value)
    return line


def split(text: str) -> tuple[dict[str, Any] | None, str]:
    """``(front matter or None when the file has none, body)``; raises FrontMatterError when unreadable."""
    match = _FRONT.match(text)
    if not match:
        return None, text
    block = "\n".join(_people_line(line) for line in match.group(1).splitlines())
    try:
        data = yaml.load(block, Loader=_TextLoader)
    except RecursionError:
        raise FrontMatterError(2, "front matter nested too deeply to read") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = (mark.line + 2) if mark is not None else 1  # +1 for the opening ---, +1 for 1-based
        raise FrontMatterError(line, f"front matter is not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise FrontMatterError(2, "front matter is not a mapping of keys to values")
    return data, text[match.end() :]


def sections(body: str) -> tuple[str, dict[str, str]]:
    """``(text before the first heading, {heading: text})``, ignoring headings inside code fences and
    inside Backlog.md's ``<!-- SECTION:…:BEGIN -->`` … ``END`` blocks (the block is all that section's)."""
    preamble: list[str] = []
    found: dict[str, list[str]] = {}
    current: list[str] = preamble
    fence: str | None = None
    blocks = 0  # marker blocks open around this line
    for line in body.replace("\r\n", "\n").split("\n"):
        stripped = line.lstrip()
        if stripped.startswith(("```", "~~~")):
            marker = stripped[:3]
            fence = None if fence == marker else (fence or marker)
        heading = _HEADING.match(line) if fence is None and not blocks else None
        if heading:
            title = heading.group(1).strip()
            while title in found:
                title += " (again)"
            found[title] = current = []
            continue
        block = _MARKER.match(line) if fence is None else None
        if block:
            blocks = blocks + 1 if block.group(1) == "BEGIN" else max(0, blocks - 1)
            continue
        current.append(line)
    return "\n".join(preamble).strip(), {k: "\n".join(v).strip() for k, v in found.items()}
