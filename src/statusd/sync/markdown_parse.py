"""Read a mirror file back into a ``Document`` (the inverse of :mod:`markdown_render`).

The file is split into blocks at level-1/2 headings outside code fences. A heading naming a
generated section (``## Vendors …``, ``## Work Items …``) starts an owned block that runs to the
next such heading; everything else is the human's own text, kept byte for byte. Inside owned
blocks every non-blank line must be one the renderer could have written (lenient where a human
would be: a new line needs no id, ``* `` works like ``- ``); anything else raises
``MarkdownParseError`` with the line number, so a bad save is reported and never overwritten.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from statusd.models import ITEM_STATUSES, ITEM_TYPES, PRIORITIES
from statusd.sync.markdown_model import (
    BANNER_PREFIX,
    FORMAT_LABELS,
    HEADINGS,
    MARKER,
    Block,
    Conflict,
    Deployment,
    Document,
    Enhancement,
    MarkdownParseError,
    MirrorState,
    Owned,
    SessionPrompt,
    Text,
    Vendor,
    WorkItem,
)

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_HEADING = re.compile(r"^ {0,3}(#{1,2})(?:[ \t]+(.*?))?[ \t#]*$")
_TAG = re.compile(r" \^([0-9a-f]{8,36})$")
_ESCAPE = re.compile(r"\\(.)")
_VENDOR = re.compile(
    r"^(?P<name>[A-Za-z0-9 _-]+?):\s+(?P<status>operational|broken)"
    r"(?:\s+\((?P<p>\d+)/(?P<t>\d+) tests passed(?:, (?P<s>\d+) skipped)?\))?"
    r"(?:\s+\[(?P<f>[^\]]*)\])?(?:\s+v(?P<v>\S.*))?$",
    re.IGNORECASE,
)
_ITEM = re.compile(r"^(?P<indent>[ \t]*)[-*+] (?:\[(?P<box>[ xX])\] )?(?P<rest>.*)$")
_ATTRS = re.compile(r"^(?P<title>.*\S) \((?P<attrs>[^()]*)\)$")
_DEPLOY_HEAD = re.compile(r"^### (?P<date>\d{4}-\d{2}-\d{2}) - PR #(?P<pr>\d+)(?::\s*(?P<title>.*))?$")
_ENH_ATTRS = re.compile(r"^(?P<title>.*\S) \((?P<attrs>Priority: [^()]*)\)$", re.IGNORECASE)
_QUARTER = re.compile(r"^Q[1-4] \d{4}$")
_FORMATS = {label.lower(): key for key, label in FORMAT_LABELS.items()}


def unescape_text(text: str) -> str:
    if "\\" not in text:
        return text
    return _ESCAPE.sub(lambda m: {"n": "\n", "r": "\r", "\\": "\\"}.get(m.group(1), m.group(0)), text)


def _split_tag(text: str) -> tuple[str, str | None]:
    m = _TAG.search(text)
    if m is None:
        return text, None
    return text[: m.start()], m.group(1)


def parse(text: str) -> Document:
    """Parse a whole mirror file; raise ``MarkdownParseError`` naming the first bad line."""
    seg = segment(text)
    parsed: dict[str, Any] = {key: PARSERS[key](first, body) for key, (first, body) in seg.sections.items()}
    state = MirrorState(banner=seg.banner, **parsed)
    return Document(state=state, layout=seg.layout, present=frozenset(seg.sections), has_marker=seg.has_marker)


@dataclass
class Segments:
    has_marker: bool
    banner: str | None
    layout: tuple[Block, ...]
    sections: dict[str, tuple[int, list[str]]]  # key -> (line number of the body's first line, body lines)


def segment(text: str) -> Segments:
    """Split a file into the human's text and the generated sections' bodies (fence-aware)."""
    text = text.removeprefix("\ufeff")  # a byte-order mark some Windows editors add is not text
    if "\x00" in text:
        raise MarkdownParseError(1, "the file contains NUL bytes (binary data?)")
    # Only "\n" ends a line here: str.splitlines would also split on \x0b, \x1c, U+2028 and others.
    lines = [x for x in re.split(r"(?<=\n)", text) if x]
    i = 0
    has_marker = False
    banner: str | None = None
    if i < len(lines) and lines[i].rstrip("\r\n") == MARKER:
        has_marker = True
        i += 1
    if i < len(lines) and lines[i].startswith(BANNER_PREFIX):
        banner = unescape_text(lines[i].rstrip("\r\n")[len(BANNER_PREFIX) :].strip())
        i += 1
        if i < len(lines) and not lines[i].strip():
            i += 1
    layout: list[Block] = []
    sections: dict[str, tuple[int, list[str]]] = {}
    text_buf: list[str] = []
    owned: tuple[str, int, list[str]] | None = None
    fence: str | None = None
    fence_line = 0
    for n in range(i, len(lines)):
        raw = lines[n]
        line = raw.rstrip("\r\n")
        key = None
        if fence is None:
            heading = _HEADING.match(line)
            if heading:
                title = (heading.group(2) or "").strip()
                name = re.sub(r"\s*\([^()]*\)$", "", title)
                key = HEADINGS.get(name) if heading.group(1) == "##" else None
                if key is not None or owned is not None:  # any level-1/2 heading ends an owned block
                    if owned is not None:
                        sections[owned[0]] = (owned[1], owned[2])
                        owned = None
                    if key is not None:
                        if key in sections:
                            raise MarkdownParseError(n + 1, f"a second '## {name}' section; keep one")
                        if text_buf:
                            layout.append(Text("".join(text_buf)))
                            text_buf = []
                        layout.append(Owned(key))
                        owned = (key, n + 2, [])
                        continue
            m = _FENCE.match(line)
            if m:
                fence, fence_line = m.group(1), n + 1
        elif line.strip().startswith(fence[0] * len(fence)) and not line.strip().strip(fence[0]):
            fence = None
        if owned is not None:
            owned[2].append(line)
        else:
            text_buf.append(raw)
    if fence is not None:
        # Markdown would let the fence run to the end, swallowing every section after it: say so instead.
        raise MarkdownParseError(fence_line, f"the code fence opened here ({fence}) is never closed")
    if owned is not None:
        sections[owned[0]] = (owned[1], owned[2])
    if text_buf:
        layout.append(Text("".join(text_buf)))
    return Segments(has_marker, banner, tuple(layout), sections)


# --- sections ----------------------------------------------------------------------------------


def _vendors(first: int, body: list[str]) -> tuple[Vendor, ...]:
    out = []
    for n, line in enumerate(body, first):
        if not line.strip():
            continue
        m = re.match(r"^[-*+] (.*)$", line)
        rest, sid = _split_tag(m.group(1).rstrip()) if m else ("", None)
        v = _VENDOR.match(rest) if m else None
        if v is None:
            raise MarkdownParseError(
                n,
                "not a vendor line; expected '- name: operational|broken (P/T tests passed, S skipped) "
                "[Excel, CSV] v1.0'",
            )
        formats: list[str] = []
        for label in (v.group("f") or "").split(","):
            label = label.strip().lower()
            if not label:
                continue
            if label not in _FORMATS:
                raise MarkdownParseError(n, f"unknown format {label!r}; known: Excel, CSV, PDF, OCR")
            formats.append(_FORMATS[label])
        p, t, s = (int(v.group(k)) if v.group(k) else None for k in ("p", "t", "s"))
        if t is not None and (p or 0) + (s or 0) > t:
            raise MarkdownParseError(n, f"{p} passed + {s or 0} skipped is more than {t} tests")
        if t is not None and s is None:
            s = 0
        out.append(
            Vendor(
                sid=sid,
                name=v.group("name").strip(),
                status=v.group("status").lower(),
                passing=p,
                total=t,
                skipped=s,
                formats=tuple(k for k in FORMAT_LABELS if k in formats) if v.group("f") is not None else None,
                version=unescape_text(v.group("v").strip()) if v.group("v") else None,
                line=n,
            )
        )
    return tuple(out)


def _work_item_attrs(rest: str, n: int) -> tuple[str, str | None, str | None, bool | None]:
    """Split ``Title (task, high, blocked)``; a trailing parenthesis that is not attributes is title."""
    m = _ATTRS.match(rest)
    if m is None:
        return rest, None, None, None
    parts = [p.strip().lower() for p in m.group("attrs").split(",")]
    if not parts or parts[0] not in ITEM_TYPES:
        return rest, None, None, None
    item_type, priority, blocked = parts[0], "medium", False
    for p in parts[1:]:
        if p in PRIORITIES:
            priority = p
        elif p in ITEM_STATUSES and p != "completed":
            blocked = p == "blocked"
        else:
            raise MarkdownParseError(
                n, f"unknown attribute {p!r}; use a priority ({', '.join(PRIORITIES)}) or 'blocked'"
            )
    return m.group("title"), item_type, priority, blocked


def _work_items(first: int, body: list[str]) -> tuple[WorkItem, ...]:
    # Build the tree with mutable frames: (indent, fields, children).
    root: list[WorkItem] = []
    stack: list[tuple[int, dict[str, object], list[WorkItem]]] = []

    def close_to(level: int) -> None:
        while len(stack) > level:
            _, fields, children = stack.pop()
            node = WorkItem(children=tuple(children), **fields)  # type: ignore[arg-type]
            (stack[-1][2] if stack else root).append(node)

    for n, line in enumerate(body, first):
        if not line.strip():
            continue
        m = _ITEM.match(line.rstrip())
        if m is None:
            raise MarkdownParseError(
                n,
                "not a work item line; expected '- [ ] Title (task, medium)' "
                "(notes belong under a heading of your own)",
            )
        # Nesting is relative, as in Markdown: deeper than the line above is its child, whatever the
        # editor's tab key inserts (two spaces, four, a tab).
        indent = len(m.group("indent").expandtabs(4))
        level = len(stack)
        while level and stack[level - 1][0] >= indent:
            level -= 1
        if level > 4:
            raise MarkdownParseError(n, "work items nest at most 5 levels")
        rest, sid = _split_tag(m.group("rest").rstrip())
        title, item_type, priority, blocked = _work_item_attrs(rest, n)
        title = unescape_text(title).strip()
        if not title:
            raise MarkdownParseError(n, "a work item needs a title")
        if len(title) > 200:
            raise MarkdownParseError(n, f"title is {len(title)} characters; at most 200")
        box = m.group("box")
        status: str | None = None
        if box is not None and box in "xX":
            status = "completed"
        elif box is not None or blocked is not None:
            status = "blocked" if blocked else "active"
        close_to(level)
        fields: dict[str, object] = {
            "sid": sid, "title": title, "item_type": item_type, "priority": priority, "status": status, "line": n,
        }  # fmt: skip
        stack.append((indent, fields, []))
    close_to(0)
    return tuple(root)


def _deployments(first: int, body: list[str]) -> tuple[Deployment, ...]:
    out: list[Deployment] = []
    current: dict[str, object] | None = None

    def flush() -> None:
        if current is not None:
            out.append(Deployment(**current))  # type: ignore[arg-type]

    for n, line in enumerate(body, first):
        if not line.strip():
            continue
        if line.startswith("### "):
            flush()
            head, sid = _split_tag(line.rstrip())
            m = _DEPLOY_HEAD.match(head)
            if m is None:
                raise MarkdownParseError(n, "not a deployment heading; expected '### YYYY-MM-DD - PR #N: title'")
            current = {
                "sid": sid, "date": m.group("date"), "pr_number": int(m.group("pr")),
                "pr_title": unescape_text(m.group("title") or ""), "commit": "", "line": n,
            }  # fmt: skip
            continue
        m = re.match(r"^[-*] ([A-Za-z ]+):\s*(.*)$", line.rstrip())
        if current is None or m is None:
            raise MarkdownParseError(n, "expected a '### YYYY-MM-DD - PR #N' heading or a '- Key: value' line")
        key, value = m.group(1).strip().lower(), m.group(2).strip()
        if key == "commit":
            current["commit"] = value
        elif key == "vendors":
            current["vendors"] = tuple(v.strip() for v in value.split(",") if v.strip())
        elif key == "work items":
            current["work_items"] = tuple(w.strip().lstrip("^#") for w in value.split(",") if w.strip())
        elif key == "tests":
            tests = []
            for part in value.split(","):
                tm = re.match(r"^\s*(\d+)\s+(\S+)\s*$", part)
                if tm is None:
                    raise MarkdownParseError(n, "tests must read like '45 passed, 0 failed'")
                tests.append((tm.group(2), int(tm.group(1))))
            current["tests"] = tuple(tests)
        elif key == "constitutional compliance":
            current["compliant"] = value in ("✓", "✔", "yes", "true", "Yes", "True")
        else:
            raise MarkdownParseError(n, f"unknown deployment field {m.group(1)!r}")
    flush()
    return tuple(out)


def _enhancements(first: int, body: list[str]) -> tuple[Enhancement, ...]:
    out = []
    for n, line in enumerate(body, first):
        if not line.strip():
            continue
        m = re.match(r"^[-*+] (.*)$", line.rstrip())
        if m is None:
            raise MarkdownParseError(n, "not an enhancement line; expected '- Title (Priority: High, Q1 2026)'")
        rest, sid = _split_tag(m.group(1))
        priority: str | None = None
        quarter: str | None = None
        status: str | None = None
        a = _ENH_ATTRS.match(rest)
        title = rest
        if a is not None:
            title, priority, status = a.group("title"), "medium", "planned"
            for part in (p.strip() for p in a.group("attrs").split(",")):
                low = part.lower()
                if low.startswith("priority:") and low[9:].strip() in PRIORITIES:
                    priority = low[9:].strip()
                elif low.startswith("status:") and low[7:].strip() in (
                    "planned",
                    "approved",
                    "implementing",
                    "completed",
                ):
                    status = low[7:].strip()
                elif _QUARTER.match(part.upper()):
                    quarter = part.upper()
                else:
                    raise MarkdownParseError(n, f"unknown enhancement attribute {part!r}")
        title = unescape_text(title).strip()
        if not title or len(title) > 200:
            raise MarkdownParseError(n, "an enhancement title must be 1-200 characters")
        out.append(Enhancement(sid=sid, title=title, priority=priority, quarter=quarter, status=status, line=n))
    return tuple(out)


def _sessions(first: int, body: list[str]) -> tuple[SessionPrompt, ...]:
    out: list[SessionPrompt] = []
    i = 0
    while i < len(body):
        n = first + i
        line = body[i]
        if not line.strip():
            i += 1
            continue
        if not line.startswith("### "):
            raise MarkdownParseError(n, "expected a '### session title' heading")
        head, sid = _split_tag(line[4:].rstrip())
        i += 1
        front: str | None = None
        prompt: str | None = None
        if i < len(body) and body[i].strip() == "---":
            end = next((j for j in range(i + 1, len(body)) if body[j].strip() == "---"), None)
            if end is None:
                raise MarkdownParseError(first + i, "front matter opened with '---' is never closed")
            front = "".join(x + "\n" for x in body[i + 1 : end])
            i = end + 1
        m = _FENCE.match(body[i]) if i < len(body) else None
        if m is not None:
            fence = m.group(1)
            end = next((j for j in range(i + 1, len(body)) if body[j].strip() == fence), None)
            if end is None:
                raise MarkdownParseError(first + i, "code fence is never closed")
            prompt = "\n".join(body[i + 1 : end])
            i = end + 1
        else:
            start = i
            while i < len(body) and not body[i].startswith("### "):
                i += 1
            plain = "\n".join(body[start:i]).strip("\n")
            prompt = plain or None
        out.append(SessionPrompt(sid=sid, title=unescape_text(head).strip(), front_matter=front, prompt=prompt, line=n))
    return tuple(out)


def _conflicts(first: int, body: list[str]) -> tuple[Conflict, ...]:
    out = []
    for n, line in enumerate(body, first):
        if not line.strip():
            continue
        m = re.match(r"^- (.*)$", line.rstrip())
        rest, sid = _split_tag(m.group(1)) if m else ("", None)
        if sid is None:
            raise MarkdownParseError(
                n, "the Sync Conflicts section is generated; resolve conflicts with resolve_conflict"
            )
        out.append(Conflict(sid=sid, text=unescape_text(rest), line=n))
    return tuple(out)


PARSERS: dict[str, Callable[[int, list[str]], tuple[object, ...]]] = {
    "vendors": _vendors,
    "work_items": _work_items,
    "deployments": _deployments,
    "enhancements": _enhancements,
    "sessions": _sessions,
    "conflicts": _conflicts,
}
