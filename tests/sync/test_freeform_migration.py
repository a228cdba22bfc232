"""Free-form status files (SPEC §8): migrated at first start, every original line accounted for.

Each file below is a shape real teams keep. After the mirror's first start beside it, every
non-blank line of the original is either in the new mirror file (in the original order) or became
(part of) a work item: its text is in an item's title or description.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from mirror_support import MirrorEnv, mirror_env

SHAPES = {
    "numbered_bold_and_next_steps": """# Acme Importer — Project Status

Last updated by the team. This file is the single place we track progress.

## Completed

1. **Parser rewrite** — handles the 2024 layout
   - supports `xlsx` and `csv`
   - 40% faster on big files
2. **CI pipeline** on GitHub Actions

## In Progress

- Vendor onboarding for *Globex*
- [ ] Fix the PDF OCR fallback

## Next Step

- [ ] Write the migration guide
- [x] Agree on the schema

## Next Step

Talk to ops about the rollout window.

```
## Vendors
- [ ] this is an example inside a fence, not a task
```

## Notes

> Remember: `make release` tags the build.
""",
    "plain_checklist": """- [ ] one
- [x] two
- [ ] three with `code`
""",
    "sprint_with_table_and_html": """# Sprint 14

<!-- owner: platform team -->

| area | owner |
|------|-------|
| api  | ana   |

## Sprint goals

### Blocked

- Waiting for the staging database
  - ticket OPS-12

### Done

* Rolled out feature flags

Some closing prose with a [link](https://example.com).
""",
    "legacy_with_extra_section": """# Project Status
## Vendors (2 total)
- vendor_a: operational
- vendor_b: broken (1/3 tests passed, 0 skipped) [PDF] v0.9
## Team
Ana and Bo own the importers.
## TODO
- [ ] rotate the API keys
""",
}


def _norm(text: str) -> str:
    return " ".join(text.replace("—", " ").replace("**", "").split())


def _core(line: str) -> str:
    text = re.sub(r"^\s*(?:[-*+]|\d+[.)])\s+", "", line).strip()
    return _norm(re.sub(r"^\[[ xX]\]\s+", "", text))


def account_for_every_line(env: MirrorEnv, original: str) -> None:
    mirror = env.text().split("\n")
    rows = env.store.reader.execute("SELECT title, COALESCE(description, '') FROM work_items").fetchall()
    vendors = {r[0] for r in env.store.reader.execute("SELECT name FROM vendors")}
    entity_text = "\n".join(f"{_norm(t)}\n{_norm(d)}" for t, d in rows)
    at = 0
    for n, line in enumerate(original.split("\n"), 1):
        if not line.strip():
            continue
        try:
            at = mirror.index(line, at) + 1
            continue
        except ValueError:
            pass
        core = _core(line)
        head = core.split(" — ")[0].split(":")[0]
        assert core in entity_text or head in entity_text or head in vendors or line.startswith("## "), (
            f"line {n} {line!r} is neither kept in order in the mirror nor part of an entity\n"
            f"--- mirror ---\n{env.text()}"
        )


@pytest.mark.parametrize("shape", sorted(SHAPES))
async def test_first_start_migrates_a_free_form_file_losing_nothing(tmp_path: Path, shape: str) -> None:
    original = SHAPES[shape]
    (tmp_path / ".project_status.md").write_text(original)
    async with mirror_env(tmp_path) as env:
        assert env.mirror.state == "running", env.mirror.reason
        assert (tmp_path / ".project_status.md.backup").read_text() == original
        text = await env.written_with("<!-- statusd mirror")
        assert text.startswith("<!-- statusd mirror")
        account_for_every_line(env, original)
        # And the migrated file is a working mirror: edit a migrated item by hand.
        items = env.items()
        assert items, "the file's tasks became work items"
        first = next(i for i in items if i["status"] != "completed")  # completed work is not in the file
        sid = env.sid(first["id"])
        line = next(x for x in text.split("\n") if x.endswith(f"^{sid}"))
        env.human_save(text.replace(line, line.replace(first["title"], first["title"] + " (edited)", 1)))
        await env.written_with(first["title"] + " (edited)")


async def test_numbered_bold_items_and_checklists_get_the_right_status(tmp_path: Path) -> None:
    (tmp_path / ".project_status.md").write_text(SHAPES["numbered_bold_and_next_steps"])
    async with mirror_env(tmp_path) as env:
        got = {i["title"]: (i["status"], i["description"]) for i in env.items()}
        parser = got["Parser rewrite — handles the 2024 layout"]
        assert parser[0] == "completed"
        assert parser[1] == "- supports `xlsx` and `csv`\n- 40% faster on big files"
        assert got["CI pipeline — on GitHub Actions"][0] == "completed"
        assert got["Vendor onboarding for *Globex*"][0] == "active"
        assert got["Fix the PDF OCR fallback"][0] == "active"
        assert got["Write the migration guide"][0] == "active"
        assert got["Agree on the schema"][0] == "completed"
        assert not any("inside a fence" in t for t in got)  # a fence is text, not structure
        text = env.text()
        assert "## Vendors\n- [ ] this is an example inside a fence, not a task\n" in text
        assert text.count("## Next Step\n") == 2


async def test_a_foreign_file_whose_migration_fails_is_left_untouched_and_the_mirror_paused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = SHAPES["legacy_with_extra_section"]
    (tmp_path / ".project_status.md").write_text(original)
    monkeypatch.setenv("STATUSD_MIGRATION_FAIL", "vendor_count")
    async with mirror_env(tmp_path) as env:
        assert env.mirror.state == "paused"
        assert "migration failed its checks (vendor_count)" in (env.mirror.reason or "")
        assert env.mirror.summary()["first_start_migration"]["success"] is False
        await env.create_item("written while paused")
        await env.mirror.flush()
        assert env.text() == original
        assert not (tmp_path / ".project_status.md.backup").exists()
        assert [v for v in env.store.reader.execute("SELECT name FROM vendors")] == []
