"""SPEC §9: ``parse(render(state)) == state`` for every state, and the human's own text kept byte for byte."""

from __future__ import annotations

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from soak import bounded
from statusd.models import FORMATS, ITEM_TYPES, PRIORITIES
from statusd.sync.markdown_model import (
    Conflict,
    Deployment,
    Enhancement,
    MarkdownParseError,
    MirrorState,
    Owned,
    SessionPrompt,
    Text,
    Vendor,
    WorkItem,
    complete_layout,
)
from statusd.sync.markdown_parse import parse
from statusd.sync.markdown_render import render

sids = st.text("0123456789abcdef", min_size=8, max_size=8)
# Titles: anything a tool accepts on one line or several (escaped), trimmed, 1-200 characters.
titles = (
    st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1, max_size=60)
    .map(str.strip)
    .filter(bool)
)
names = st.from_regex(r"[A-Za-z0-9_-][A-Za-z0-9 _-]{0,20}[A-Za-z0-9_-]", fullmatch=True)
versions = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,10}", fullmatch=True)


@st.composite
def vendors(draw: st.DrawFn) -> Vendor:
    total = draw(st.integers(0, 500))
    passing = draw(st.integers(0, total))
    skipped = draw(st.integers(0, total - passing))
    formats = tuple(f for f in FORMATS if draw(st.booleans()))
    return Vendor(
        draw(sids), draw(names), draw(st.sampled_from(["operational", "broken"])), passing, total, skipped,
        formats, draw(versions),
    )  # fmt: skip


def work_items(depth: int = 0) -> st.SearchStrategy[WorkItem]:
    children = st.lists(work_items(depth + 1), max_size=3).map(tuple) if depth < 4 else st.just(())
    return st.builds(
        WorkItem,
        sid=sids,
        title=titles,
        item_type=st.sampled_from(ITEM_TYPES),
        priority=st.sampled_from(PRIORITIES),
        status=st.sampled_from(["active", "blocked", "completed"]),
        children=children,
    )


deployments = st.builds(
    Deployment,
    sid=sids,
    date=st.dates().map(lambda d: f"{d.year:04d}-{d.month:02d}-{d.day:02d}"),
    pr_number=st.integers(1, 10**6),
    pr_title=titles,
    commit=st.text("0123456789abcdef", min_size=7, max_size=40),
    vendors=st.lists(names, max_size=3).map(tuple),
    work_items=st.lists(sids, max_size=3).map(tuple),
    tests=st.lists(
        st.tuples(st.sampled_from(["passed", "failed", "skipped", "xfail"]), st.integers(0, 999)), max_size=3
    ).map(lambda pairs: tuple(dict(pairs).items())),
    compliant=st.booleans(),
)
enhancements = st.builds(
    Enhancement,
    sid=sids,
    title=titles,
    priority=st.sampled_from(PRIORITIES),
    quarter=st.none() | st.builds(lambda q, y: f"Q{q} {y}", st.integers(1, 4), st.integers(2000, 2100)),
    status=st.sampled_from(["planned", "approved", "implementing", "completed"]),
)
prompts = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\r"), max_size=200)
front_matter = st.dictionaries(
    st.from_regex(r"[a-z_]{1,10}", fullmatch=True), st.integers() | st.text(max_size=20) | st.booleans(), max_size=3
).map(lambda d: yaml.safe_dump({"schema_version": 1, **d}, sort_keys=True, allow_unicode=True))
sessions = st.builds(
    SessionPrompt, sid=sids, title=titles, front_matter=st.none() | front_matter, prompt=st.none() | prompts
)
conflicts = st.builds(Conflict, sid=sids, text=titles)
states = st.builds(
    MirrorState,
    vendors=st.lists(vendors(), max_size=4).map(tuple),
    work_items=st.lists(work_items(), max_size=3).map(tuple),
    deployments=st.lists(deployments, max_size=3).map(tuple),
    enhancements=st.lists(enhancements, max_size=3).map(tuple),
    sessions=st.lists(sessions, max_size=3).map(tuple),
    conflicts=st.lists(conflicts, max_size=2).map(tuple),
    banner=st.none() | titles,
)


@settings(max_examples=bounded(100, 3000), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(states)
def test_parse_of_render_is_the_state(state: MirrorState) -> None:
    text = render(state)
    doc = parse(text)
    assert doc.state == state
    assert doc.has_marker
    assert render(doc.state, doc.layout) == text  # and rendering again gives the same bytes


# The human's own sections: text between generated sections, headings of any other name.
notes = st.lists(
    st.sampled_from(
        [
            "## Notes\n\nSome *prose* here.\n",
            "## Next Step\n\n1. **Ship it**\n   - nested\n",
            "# Another title\n",
            "```\n## Vendors inside a fence\n```\n",
            "Plain paragraph without a heading.\n",
        ]
    ),
    min_size=1,
    max_size=3,
).map("".join)


@settings(max_examples=bounded(60, 1500), deadline=None)
@given(states, notes, st.integers(0, 6))
def test_own_text_is_kept_byte_for_byte_in_place(state: MirrorState, note: str, at: int) -> None:
    layout = list(complete_layout((Text("# Project Status\n\n"),)))
    # A note after a generated section must start with a heading (that is where the section ends).
    text_block = note if note.startswith("#") or at == 0 else "## Notes\n\n" + note
    layout.insert(min(at, len(layout)), Text(text_block))
    rendered = render(state, tuple(layout))
    doc = parse(rendered)
    assert doc.state == state
    assert Text(text_block) in doc.layout or text_block in "".join(b.text for b in doc.layout if isinstance(b, Text))
    assert rendered.count(text_block) >= 1
    assert render(doc.state, doc.layout) == rendered
    assert [b.key for b in doc.layout if isinstance(b, Owned)] == [
        b.key for b in layout if isinstance(b, Owned) and (b.key != "conflicts" or state.conflicts)
    ]


def test_an_unclosed_fence_is_a_parse_error_naming_its_line() -> None:
    text = render(
        MirrorState(work_items=(WorkItem("0123abcd", "kept"),)), (Text("# T\n\n```\nnotes\n"), Owned("work_items"))
    )
    try:
        parse(text)
    except MarkdownParseError as exc:
        assert exc.line == 4 and "never closed" in exc.reason
    else:
        raise AssertionError("an unclosed fence parsed")
