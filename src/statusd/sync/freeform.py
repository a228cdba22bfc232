"""Find work items in a free-form status file (SPEC §8), keeping every other line verbatim, in order.

Real ``.project_status.md`` files are prose with headings, numbered bold items with nested bullets,
``- [ ]`` / ``- [x]`` checklists and repeated ``## Next Step`` headings. ``markdown-it-py`` gives
the block structure with source line maps, so a ``## Vendors`` or a ``- [ ]`` inside a code fence
is text, not structure. Two things become work items:

* every checklist item (``[ ]`` → active, ``[x]`` → completed; a status-like heading above it
  decides for an unchecked box, e.g. *Blocked*);
* every top-level list item under a status-like heading (*Completed*, *Done*, *In Progress*,
  *Next Steps*, *Pending*, *TODO*, *Blocked*, …).

The item's first line is its title (markers, checkbox and ``**bold**`` removed; a title past 200
characters is cut and kept whole in the description); its nested lines are its description. The
lines of an item are removed from the text; all others stay.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from markdown_it import MarkdownIt

_STATUS_HEADINGS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\b(completed?|done|finished|shipped|resolved)\b", re.I), "completed"),
    (re.compile(r"\bblocked\b", re.I), "blocked"),
    (
        re.compile(r"\b(in[ -]progress|doing|wip|current|ongoing|next[ -]steps?|to[ -]?do|pending|backlog)\b", re.I),
        "active",
    ),
)
_BOX = re.compile(r"^\[([ xX])\]\s+")
_MARKER = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+")
_BOLD = re.compile(r"^\*\*(.+?)\*\*:?\s*(.*)$|^__(.+?)__:?\s*(.*)$")


@dataclass(frozen=True)
class FreeItem:
    title: str
    status: str
    description: str | None
    line: int  # 1-based, in the whole file
    heading: str | None


def heading_status(text: str) -> str | None:
    for pattern, status in _STATUS_HEADINGS:
        if pattern.search(text):
            return status
    return None


def _title(first_line: str) -> tuple[str, bool | None]:
    text = _MARKER.sub("", first_line, count=1).strip()
    box = _BOX.match(text)
    checked = None
    if box is not None:
        checked = box.group(1) in "xX"
        text = text[box.end() :]
    bold = _BOLD.match(text)
    if bold is not None:
        head, rest = (bold.group(1), bold.group(2)) if bold.group(1) is not None else (bold.group(3), bold.group(4))
        rest = rest.lstrip("—–-: ")
        text = f"{head} — {rest}" if rest else head
    return text.strip(), checked


def extract(text: str, first_line: int = 1) -> tuple[list[FreeItem], str]:
    """Return the work items found in ``text`` and the text with their lines removed."""
    lines = text.split("\n")
    tokens = MarkdownIt("commonmark").parse(text)
    items: list[FreeItem] = []
    taken: set[int] = set()
    heading: str | None = None
    heading_state: str | None = None
    list_depth = 0
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok.type == "heading_open":
            heading = tokens[i + 1].content.strip()
            heading_state = heading_status(heading)
        elif tok.type in ("bullet_list_open", "ordered_list_open"):
            list_depth += 1
        elif tok.type in ("bullet_list_close", "ordered_list_close"):
            list_depth -= 1
        elif tok.type == "list_item_open" and tok.map is not None:
            start, end = tok.map
            while end > start + 1 and not lines[end - 1].strip():
                end -= 1  # a loose list's trailing blank line stays text
            first = lines[start]
            title, checked = _title(first)
            top = list_depth == 1
            if title and (checked is not None or (top and heading_state is not None)):
                if checked:
                    status = "completed"
                elif checked is False:  # an unchecked box is not done, whatever the heading says
                    status = "blocked" if heading_state == "blocked" else "active"
                else:
                    status = heading_state or "active"
                description = _dedent(lines[start + 1 : end])
                if len(title) > 200:
                    description = title + ("\n" + description if description else "")
                    title = title[:199].rstrip() + "…"
                items.append(FreeItem(title, status, description, first_line + start, heading))
                taken.update(range(start, end))
                # Skip this item's own tokens: nested checklists travel in its description.
                depth = 1
                i += 1
                while i < len(tokens) and depth:
                    if tokens[i].type == "list_item_open":
                        depth += 1
                    elif tokens[i].type == "list_item_close":
                        depth -= 1
                    elif tokens[i].type in ("bullet_list_open", "ordered_list_open"):
                        list_depth += 1
                    elif tokens[i].type in ("bullet_list_close", "ordered_list_close"):
                        list_depth -= 1
                    i += 1
                continue
        i += 1
    kept = "\n".join(line for n, line in enumerate(lines) if n not in taken)
    return items, kept


def _dedent(lines: list[str]) -> str | None:
    content = [ln for ln in lines if ln.strip()]
    if not content:
        return None
    indent = min(len(ln) - len(ln.lstrip(" ")) for ln in content)
    return "\n".join(ln[indent:] for ln in lines).strip("\n") or None
