"""Render a ``MirrorState`` as the legacy-compatible status document (SPEC §9). Pure and deterministic.

Line shapes (each entity line ends with `` ^<short id>``):

    - vendor_1: operational (10/12 tests passed, 2 skipped) [Excel, CSV] v1.2.3 ^1a2b3c4d
    - [ ] Fix login (task, high) ^1a2b3c4d          (indented two spaces per level; [x] = completed)
    - [ ] Wait for API (task, medium, blocked) ^…
    ### 2025-10-01 - PR #100: Add CSV export ^…      (then - Commit: / - Vendors: / - Work Items: / - Tests: / …)
    - Enhancement A (Priority: High, Q1 2026) ^…
"""

from __future__ import annotations

import re

from statusd.sync.markdown_model import (
    BANNER_PREFIX,
    FORMAT_LABELS,
    MARKER,
    SECTIONS,
    Block,
    Conflict,
    Deployment,
    Enhancement,
    MirrorState,
    Owned,
    SessionPrompt,
    Text,
    Vendor,
    WorkItem,
    complete_layout,
)

_BACKTICKS = re.compile(r"`+")


def escape_text(text: str) -> str:
    """One-line form of user text: backslash, newline and carriage return become escapes."""
    if "\\" not in text and "\n" not in text and "\r" not in text:
        return text
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")


def _tag(sid: str | None) -> str:
    return f" ^{sid}" if sid else ""


def vendor_line(v: Vendor) -> str:
    text = f"- {v.name}: {v.status}"
    if v.total is not None:
        text += f" ({v.passing or 0}/{v.total} tests passed, {v.skipped or 0} skipped)"
    if v.formats is not None:
        text += f" [{', '.join(FORMAT_LABELS[f] for f in v.formats)}]"
    if v.version is not None:
        text += f" v{escape_text(v.version)}"
    return text + _tag(v.sid)


def work_item_lines(items: tuple[WorkItem, ...], out: list[str], depth: int = 0) -> None:
    for item in items:
        box = "x" if item.status == "completed" else " "
        attrs = f"{item.item_type or 'task'}, {item.priority or 'medium'}" + (
            ", blocked" if item.status == "blocked" else ""
        )
        out.append(f"{'  ' * depth}- [{box}] {escape_text(item.title)} ({attrs}){_tag(item.sid)}")
        if item.children:  # most items are leaves: no call for them
            work_item_lines(item.children, out, depth + 1)


def deployment_lines(d: Deployment, out: list[str]) -> None:
    out.append(f"### {d.date} - PR #{d.pr_number}: {escape_text(d.pr_title)}{_tag(d.sid)}")
    out.append(f"- Commit: {d.commit}")
    if d.vendors:
        out.append(f"- Vendors: {', '.join(d.vendors)}")
    if d.work_items:
        out.append(f"- Work Items: {', '.join('^' + w for w in d.work_items)}")
    if d.tests:
        out.append(f"- Tests: {', '.join(f'{n} {k}' for k, n in d.tests)}")
    out.append(f"- Constitutional Compliance: {'✓' if d.compliant else '✗'}")
    out.append("")


def enhancement_line(e: Enhancement) -> str:
    attrs = [f"Priority: {(e.priority or 'medium').capitalize()}"]
    if e.quarter:
        attrs.append(e.quarter)
    if e.status not in (None, "planned"):
        attrs.append(f"Status: {e.status.capitalize()}")
    return f"- {escape_text(e.title)} ({', '.join(attrs)}){_tag(e.sid)}"


def fence_for(text: str) -> str:
    longest = max((len(m) for m in _BACKTICKS.findall(text)), default=0)
    return "`" * max(3, longest + 1)


def session_lines(s: SessionPrompt, out: list[str]) -> None:
    out.append(f"### {escape_text(s.title)}{_tag(s.sid)}")
    if s.front_matter is not None:
        out.append("---")
        out.extend(s.front_matter.rstrip("\n").split("\n") if s.front_matter.strip() else [])
        out.append("---")
    if s.prompt is not None:
        fence = fence_for(s.prompt)
        out.append(f"{fence}text")
        out.extend(s.prompt.split("\n"))
        out.append(fence)
    out.append("")


def conflict_line(c: Conflict) -> str:
    return f"- {escape_text(c.text)}{_tag(c.sid)}"


def render_section(state: MirrorState, key: str) -> str:
    """The text of one generated section (empty for an empty Sync Conflicts section)."""
    body: list[str] = []
    if key == "vendors":
        head = f"Vendors ({len(state.vendors)} total)"
        body = [vendor_line(v) for v in state.vendors]
    elif key == "work_items":
        work_item_lines(state.work_items, body)
        head = f"Work Items ({len(body)} active)"  # one line per item
    elif key == "deployments":
        head = f"Deployments ({len(state.deployments)} total)"
        for d in state.deployments:
            deployment_lines(d, body)
    elif key == "enhancements":
        head = f"Future Enhancements ({len(state.enhancements)} total)"
        body = [enhancement_line(e) for e in state.enhancements]
    elif key == "sessions":
        head = f"Session Prompts ({len(state.sessions)} total)"
        for s in state.sessions:
            session_lines(s, body)
    elif key == "conflicts":
        if not state.conflicts:
            return ""
        head = f"Sync Conflicts ({len(state.conflicts)} open)"
        body = [conflict_line(c) for c in state.conflicts]
    else:  # pragma: no cover - keys come from SECTIONS
        raise KeyError(key)
    while body and body[-1] == "":
        body.pop()
    text = f"## {head}\n\n"
    if body:
        text += "\n".join(body) + "\n\n"
    return text


def render(state: MirrorState, layout: tuple[Block, ...] | None = None) -> str:
    """Render the whole document: marker, banner when degraded, then the layout's blocks in order."""
    from statusd.sync.markdown_model import DEFAULT_LAYOUT

    blocks = complete_layout(layout if layout is not None else DEFAULT_LAYOUT)
    parts = [MARKER + "\n"]
    if state.banner:
        parts.append(f"{BANNER_PREFIX} {escape_text(state.banner)}\n\n")
    for block in blocks:
        if isinstance(block, Text):
            parts.append(block.text)
        elif isinstance(block, Owned):
            section = render_section(state, block.key)
            if section and parts and not parts[-1].endswith("\n"):
                parts.append("\n")  # a heading must start its own line
            parts.append(section)
    text = "".join(parts)
    if isinstance(blocks[-1], Owned) or not blocks:
        text = text.rstrip("\n") + "\n"
    return text


SECTION_KEYS = tuple(key for key, _ in SECTIONS)
