"""The markdown mirror's view of the project state (SPEC §9): what the file shows, nothing more.

A ``MirrorState`` is what ``render`` writes and ``parse`` reads back; ``parse(render(s)) == s``.
Entities are named by short ids (``sid``: the shortest unique id prefix of at least 8 characters)
because that is what a line in the file carries. A line a human added has ``sid=None``. ``line``
(the 1-based line number a parsed entity came from) is for messages and never compared.

A ``Document`` is a state plus the file's layout: the generated sections (``Owned``) and the
human's own text between them (``Text``), kept byte for byte.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from statusd.errors import StatusdError

SHORT_ID = 8
MARKER = "<!-- statusd mirror: edit lines in place and keep the ^id tags; your own sections are kept as written -->"
BANNER_PREFIX = "> **statusd warning:**"

# Generated sections in canonical order: (key, heading without the count).
SECTIONS: tuple[tuple[str, str], ...] = (
    ("vendors", "Vendors"),
    ("work_items", "Work Items"),
    ("deployments", "Deployments"),
    ("enhancements", "Future Enhancements"),
    ("sessions", "Session Prompts"),
    ("conflicts", "Sync Conflicts"),
)
HEADINGS = {heading: key for key, heading in SECTIONS}
FORMAT_LABELS = {"excel": "Excel", "csv": "CSV", "pdf": "PDF", "ocr": "OCR"}
TEST_ORDER = ("passed", "failed", "skipped")


@dataclass(frozen=True)
class Vendor:
    sid: str | None
    name: str
    status: str
    # None: the line does not say (a human's short line), which changes nothing on import.
    passing: int | None = 0
    total: int | None = 0
    skipped: int | None = 0
    formats: tuple[str, ...] | None = ()  # canonical keys (excel, csv, pdf, ocr) in that order
    version: str | None = "0.0.0"
    line: int = field(default=0, compare=False)


@dataclass(frozen=True)
class WorkItem:
    sid: str | None
    title: str
    item_type: str | None = "task"  # None: the line does not say (keep / default)
    priority: str | None = "medium"
    status: str | None = "active"
    children: tuple[WorkItem, ...] = ()
    line: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Deployment:
    sid: str | None
    date: str
    pr_number: int
    pr_title: str
    commit: str
    vendors: tuple[str, ...] = ()
    work_items: tuple[str, ...] = ()
    tests: tuple[tuple[str, int], ...] = ()
    compliant: bool = False
    line: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Enhancement:
    sid: str | None
    title: str
    priority: str | None = "medium"  # None: the line does not say
    quarter: str | None = None  # as shown: "Q1 2026"
    status: str | None = "planned"
    line: int = field(default=0, compare=False)


@dataclass(frozen=True)
class SessionPrompt:
    sid: str | None
    title: str
    front_matter: str | None = None  # YAML text between the --- lines
    prompt: str | None = None
    line: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Conflict:
    sid: str
    text: str
    line: int = field(default=0, compare=False)


@dataclass(frozen=True)
class MirrorState:
    vendors: tuple[Vendor, ...] = ()
    work_items: tuple[WorkItem, ...] = ()
    deployments: tuple[Deployment, ...] = ()
    enhancements: tuple[Enhancement, ...] = ()
    sessions: tuple[SessionPrompt, ...] = ()
    conflicts: tuple[Conflict, ...] = ()
    banner: str | None = None


@dataclass(frozen=True)
class Text:
    """The human's own lines, kept byte for byte."""

    text: str


@dataclass(frozen=True)
class Owned:
    key: str


Block = Text | Owned

DEFAULT_LAYOUT: tuple[Block, ...] = (Text("# Project Status\n\n"), *(Owned(key) for key, _ in SECTIONS))


@dataclass(frozen=True)
class Document:
    state: MirrorState
    layout: tuple[Block, ...]
    present: frozenset[str] = frozenset()  # generated sections found in the file (absent ones change nothing)
    has_marker: bool = False


class MarkdownParseError(StatusdError):
    """A save that cannot be read back: ``line`` (1-based) and ``reason`` say where and why.

    Every ``except StatusdError`` whose body could meet one was checked when it joined the tree:
    the importer's sites wrap store calls that never raise it, and ``migrate`` turns it into a
    ``ValidationError`` before any caller sees it (decisions.md, 2026-11-30).
    """

    code = "validation_error"

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(f"line {line}: {reason}", {"line": line, "reason": reason})
        self.line = line
        self.reason = reason


def complete_layout(layout: tuple[Block, ...]) -> tuple[Block, ...]:
    """Insert any missing generated section after the nearest earlier one present (else at the end)."""
    out = list(layout)
    order = [key for key, _ in SECTIONS]
    for i, key in enumerate(order):
        if any(isinstance(b, Owned) and b.key == key for b in out):
            continue
        at = len(out)
        for earlier in reversed(order[:i]):
            idx = next((j for j, b in enumerate(out) if isinstance(b, Owned) and b.key == earlier), None)
            if idx is not None:
                at = idx + 1
                break
        out.insert(at, Owned(key))
    return tuple(out)


def short_ids(ids: list[str]) -> dict[str, str]:
    """Map each id to its shortest prefix of at least 8 characters that no other id shares."""
    prefixes = [ident[:SHORT_ID] for ident in ids]
    if len(set(prefixes)) == len(prefixes):  # the usual case, settled without sorting (SPEC §11 P8)
        return dict(zip(ids, prefixes, strict=True))
    ordered = sorted(ids)
    # Longest common prefix with the next id in order; ids are random, so nearly every pair differs
    # within the first 8 characters and the fast path settles it.
    lcp = [0] * len(ordered)
    for i in range(len(ordered) - 1):
        a, b = ordered[i], ordered[i + 1]
        if a[:SHORT_ID] != b[:SHORT_ID]:
            continue
        n = SHORT_ID
        while n < min(len(a), len(b)) and a[n] == b[n]:
            n += 1
        lcp[i] = n
    out: dict[str, str] = {}
    for i, ident in enumerate(ordered):
        need = max(SHORT_ID, lcp[i] + 1, (lcp[i - 1] + 1) if i else 0)
        out[ident] = ident[: min(need, len(ident))]
    return out
