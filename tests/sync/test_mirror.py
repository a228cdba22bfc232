"""The mirror over a real store and file (SPEC §9), with the injectable change source (fast, deterministic)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from pathlib import Path
from typing import Any

import pytest
from mirror_support import mirror_env
from sync_support import wait_for

from statusd.models import ListConflictsArgs
from statusd.store import conflicts
from statusd.sync import mirror as mirror_module
from statusd.sync.mirror import Mirror


async def test_a_change_is_written_atomically_and_identical_bytes_are_not_rewritten(tmp_path: Path) -> None:
    async with mirror_env(tmp_path) as env:
        item = await env.create_item("Write the mirror", priority="high")
        text = await env.written_with("Write the mirror")
        assert f"- [ ] Write the mirror (task, high) ^{env.sid(item['id'])}\n" in text
        assert text.startswith("<!-- statusd mirror")
        assert "# Project Status\n" in text
        # The temp file was renamed, not left behind.
        assert not [p for p in os.listdir(tmp_path) if p.endswith("statusd-tmp")]
        inode, writes = env.path.stat().st_ino, env.mirror.writes

        # A change the file does not show (a claim) renders the same bytes: no rewrite.
        from statusd import models as m
        from statusd.store import WriteContext, workitems

        await env.store.write(workitems.claim, WriteContext(actor="agent"), m.ClaimWorkItemArgs(id=item["id"]))
        env.mirror.written.clear()
        await wait_for(env.mirror.written.is_set, what="the render after the claim")
        assert (env.path.stat().st_ino, env.mirror.writes) == (inode, writes)

        await env.update_item(item["id"], status="blocked")
        text = await env.written_with("- [ ] Write the mirror (task, high, blocked)")
        assert env.path.stat().st_ino != inode  # replaced by rename

        # Completed work leaves the file, as it leaves a to-do list.
        await env.update_item(item["id"], status="completed")
        await wait_for(lambda: "Write the mirror" not in env.text(), what="the completed item to leave the file")


async def test_human_edits_become_ordinary_writes(tmp_path: Path) -> None:
    async with mirror_env(tmp_path) as env:
        parent = await env.create_item("Project A", item_type="project")
        child = await env.create_item("Task 1", parent_id=parent["id"])
        gone = await env.create_item("Obsolete task")
        text = await env.written_with("Obsolete task")
        p, c, g = (env.sid(x["id"]) for x in (parent, child, gone))

        edited = (
            text.replace(f"- [ ] Task 1 (task, medium) ^{c}", f"- [x] Task 1 renamed (task, critical) ^{c}")
            .replace(f"- [ ] Obsolete task (task, medium) ^{g}\n", "")
            .replace(f"^{c}\n", f"^{c}\n    - [ ] New subtask (research, low)\n")
        )
        env.human_save(edited)
        await wait_for(lambda: any(i["title"] == "New subtask" for i in env.items()), what="the new line created")

        row = env.item(child["id"])
        assert (row["title"], row["status"], row["priority"], row["version"]) == (
            "Task 1 renamed",
            "completed",
            "critical",
            2,
        )
        new = next(i for i in env.items() if i["title"] == "New subtask")
        assert (new["parent_id"], new["item_type"], new["priority"], new["depth"]) == (
            child["id"],
            "research",
            "low",
            2,
        )
        assert env.item(gone["id"])["deleted_at"] is not None  # soft-deleted, recoverable
        via = [r[0] for r in env.store.reader.execute("SELECT DISTINCT via FROM history WHERE actor = 'markdown'")]
        assert via == ["markdown"]

        # The file is re-rendered with the new line's id; the deleted item is gone from it.
        text = await env.written_with(f"- [ ] New subtask (research, low) ^{env.sid(new['id'])}")
        assert "Obsolete task" not in text
        assert f"^{p}" in text

        await env.update_item(gone["id"], deleted=False)  # recoverable
        await env.written_with("Obsolete task")


async def test_a_clash_with_a_concurrent_tool_write_becomes_a_conflict_not_a_loss(tmp_path: Path) -> None:
    async with mirror_env(tmp_path) as env:
        item = await env.create_item("Original title", priority="low")
        text = await env.written_with("Original title")
        sid = env.sid(item["id"])

        # The tool changes the title and nothing else; the human, looking at the old render, changes the
        # title too and the priority. The human's save may even be the file the mirror has not re-rendered.
        env.mirror.state = "paused"  # hold the writer so the human's save is made against the old render
        await env.update_item(item["id"], title="Tool title")
        env.mirror.state = "running"
        env.human_save(text.replace(f"Original title (task, low) ^{sid}", f"Human title (task, high) ^{sid}"))
        await wait_for(lambda: env.item(item["id"])["priority"] == "high", what="the human's priority applied")

        row = env.item(item["id"])
        assert row["title"] == "Tool title"  # the store keeps the other writer's value …
        open_ = env.store.read(conflicts.list_conflicts, ListConflictsArgs())["conflicts"]
        assert len(open_) == 1  # … and the human's is kept in a conflict record
        assert open_[0]["fields"] == {
            "title": {"base": "Original title", "local": "Human title", "remote": "Tool title"}
        }
        text = await env.written_with("## Sync Conflicts (1 open)")
        assert '"Human title"' in text


async def test_a_save_that_does_not_parse_is_never_overwritten_and_import_resumes(tmp_path: Path) -> None:
    async with mirror_env(tmp_path) as env:
        item = await env.create_item("Keep me")
        text = await env.written_with("Keep me")
        sid = env.sid(item["id"])
        lines = text.split("\n")
        bad_line = lines.index(f"- [ ] Keep me (task, medium) ^{sid}") + 1
        broken = text.replace(f"- [ ] Keep me (task, medium) ^{sid}", f"- [ ] Keep me edited (task, urgent) ^{sid}")
        env.human_save(broken)
        await wait_for(lambda: env.mirror.state == "paused", what="the mirror to pause")
        assert env.mirror.error == {"line": bad_line, "reason": env.mirror.error["reason"]}
        assert "urgent" in env.mirror.error["reason"]
        assert env.mirror.summary()["state"] == "paused"

        # Store changes meanwhile never touch the human's file.
        await env.create_item("Added by a tool while paused")
        await env.update_item(item["id"], priority="high")
        await env.mirror.flush()  # paused: nothing to flush
        # Even a render forced through (as if paused had been missed) refuses: the file holds a save
        # the mirror neither wrote nor imported.
        env.mirror.state = "running"
        await asyncio.to_thread(env.mirror._render_and_write)
        env.mirror.state = "paused"
        assert env.text() == broken
        assert env.item(item["id"])["title"] == "Keep me"

        env.human_save(broken.replace("(task, urgent)", "(task, critical)"))
        await wait_for(lambda: env.mirror.state == "running", what="the mirror to resume")
        row = env.item(item["id"])
        # The human's edit applies against the render it was made from: the title applies; the human's
        # priority and the tool's (made meanwhile) differ, so the tool's stays and the human's is a conflict.
        assert (row["title"], row["priority"]) == ("Keep me edited", "high")
        assert env.mirror.last_import == {"created": 0, "updated": 1, "deleted": 0, "conflicts": 1, "warnings": []}
        text = await env.written_with("Added by a tool while paused")
        assert "Keep me edited" in text


async def test_own_writes_are_recognised_by_hash(tmp_path: Path) -> None:
    async with mirror_env(tmp_path) as env:
        await env.create_item("Mine")
        await env.written_with("Mine")
        assert await env.mirror.import_file() is None  # the file is one the mirror wrote
        assert env.mirror.imports == 0


async def test_the_humans_own_sections_stay_byte_for_byte_in_place(tmp_path: Path) -> None:
    async with mirror_env(tmp_path) as env:
        item = await env.create_item("First")
        text = await env.written_with("First")
        notes = "## Notes from the team\n\n  Odd   spacing, *emphasis*, trailing spaces   \n\n```\n## Vendors\n```\n\n"
        at = text.index("## Work Items")
        env.human_save(text[:at] + notes + text[at:])
        await wait_for(lambda: env.mirror.imports == 1, what="the notes imported")

        await env.update_item(item["id"], title="First, renamed")
        text = await env.written_with("First, renamed")
        assert notes in text
        assert text.index("## Vendors (") < text.index(notes) < text.index("## Work Items")


async def test_a_foreign_file_is_migrated_with_a_backup_and_a_deleted_file_is_written_again(tmp_path: Path) -> None:
    foreign = "# Our status\n\n- [ ] something we track by hand\n"
    (tmp_path / ".project_status.md").write_text(foreign)
    async with mirror_env(tmp_path) as env:
        assert env.mirror.state == "running"
        assert (tmp_path / ".project_status.md.backup").read_text() == foreign
        assert [i["title"] for i in env.items()] == ["something we track by hand"]
        text = await env.written_with("something we track by hand (task, medium) ^")
        assert text.startswith("<!-- statusd mirror") and "# Our status\n" in text

        env.path.unlink()
        env.events.put_nowait({env.path.name})
        await env.written_with("something we track by hand")


async def test_sync_status_reports_the_mirror(tmp_path: Path) -> None:
    async with mirror_env(tmp_path) as env:
        await env.create_item("reported item")
        await env.written_with("reported item")
        # The counter moves just after the rename the file check saw.
        await wait_for(lambda: env.mirror.summary()["writes"] >= 1, what="the write counted")
        summary = env.mirror.summary()
        assert summary["state"] == "running" and summary["last_write_at"] is not None
        json.dumps(summary)  # it travels in tool results


async def test_a_second_save_before_ids_are_written_back_does_not_duplicate_new_lines(tmp_path: Path) -> None:
    async with mirror_env(tmp_path) as env:
        item = await env.create_item("Existing")
        text = await env.written_with("Existing")
        sid = env.sid(item["id"])
        line = f"- [ ] Existing (task, medium) ^{sid}"
        first = text.replace(line, f"{line}\n- [ ] Added once (task, low)\n  - [ ] Its child (task, low)")
        second = first.replace("Added once (task, low)", "Added once (task, high)").replace(line, "")

        env.path.write_text(first)
        assert (await env.mirror.import_file()) is not None
        env.path.write_text(second)  # the mirror has not rewritten the file with the new lines' ids yet
        result = await env.mirror.import_file()
        assert result is not None and result.created_count == 0

        added = [i for i in env.items() if i["title"] == "Added once"]
        assert len(added) == 1 and added[0]["priority"] == "high"
        assert len([i for i in env.items() if i["title"] == "Its child"]) == 1
        assert env.item(item["id"])["deleted_at"] is not None  # the second save removed that line
        assert env.store.reader.execute("SELECT COUNT(*) FROM conflicts").fetchone()[0] == 0


async def test_a_restart_after_a_crash_never_reverts_changes_the_file_had_not_caught_up_with(tmp_path: Path) -> None:
    async with mirror_env(tmp_path) as env:
        ahead = await env.create_item("Store will be ahead")
        edited = await env.create_item("Human edits this one")
        text = await env.written_with("Human edits this one")
        # The daemon "crashes" after committing a change the file never showed (the writer held off).
        env.mirror.state = "paused"
        await env.update_item(ahead["id"], title="Changed just before the crash")
        sid = env.sid(edited["id"])
    assert "Changed just before the crash" not in (tmp_path / ".project_status.md").read_text()

    # While the daemon is down, a human edits another line of the (stale) file.
    stale = text.replace(f"Human edits this one (task, medium) ^{sid}", f"Edited while down (task, high) ^{sid}")
    (tmp_path / ".project_status.md").write_text(stale)

    async with mirror_env(tmp_path) as env:
        assert env.item(ahead["id"])["title"] == "Changed just before the crash"  # not reverted to the file's
        row = env.item(edited["id"])
        assert (row["title"], row["priority"]) == ("Edited while down", "high")  # the human's edit applied
        text = await env.written_with("Changed just before the crash")
        assert "Edited while down (task, high)" in text
        assert env.store.reader.execute("SELECT COUNT(*) FROM conflicts").fetchone()[0] == 0


async def test_a_restart_with_an_untouched_file_imports_nothing(tmp_path: Path) -> None:
    async with mirror_env(tmp_path) as env:
        item = await env.create_item("Steady")
        await env.written_with("Steady")
        env.mirror.state = "paused"
        await env.update_item(item["id"], title="Ahead of the file")
    async with mirror_env(tmp_path) as env:
        assert env.item(item["id"])["title"] == "Ahead of the file"
        assert env.mirror.imports == 0
        await env.written_with("Ahead of the file")


async def test_a_crash_between_replacing_the_file_and_its_shadow_imports_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # R1 found it: kill -9 right after the file was replaced but before the shadow beside the store
    # caught up. The next start took the older shadow as the base, read the file's newer lines as a
    # human's additions and created those items a second time (they then reached the hub too).
    async with mirror_env(tmp_path) as env:
        await env.create_item("Written with its shadow")
        await env.written_with("Written with its shadow")
        monkeypatch.setattr(Mirror, "_promote_shadow", lambda self, digest: None)  # dies right here
        await env.create_item("Written, shadow behind")
        await env.written_with("Written, shadow behind")
        env.mirror.state = "paused"
        await env.create_item("Committed, never in the file")  # the store is ahead of the file
    monkeypatch.undo()
    titles = ["Committed, never in the file", "Written with its shadow", "Written, shadow behind"]
    async with mirror_env(tmp_path) as env:
        assert sorted(i["title"] for i in env.items()) == titles
        await env.create_item("After the restart")
        await env.written_with("After the restart")
    async with mirror_env(tmp_path) as env:  # the promoted shadow is the base from now on
        assert sorted(i["title"] for i in env.items()) == sorted([*titles, "After the restart"])


async def test_a_render_that_never_reached_the_file_is_no_base_for_the_next_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with mirror_env(tmp_path) as env:
        kept = await env.create_item("In the file")
        text = await env.written_with("In the file")
        original = mirror_module.write_atomically

        def crash_before_the_file(path: Path, data: bytes, **kw: Any) -> None:
            if path == env.mirror.path:
                raise _Died  # the process dies between the pending render and the file
            original(path, data, **kw)

        monkeypatch.setattr(mirror_module, "write_atomically", crash_before_the_file)
        env.mirror.state = "paused"
        await env.create_item("Never reached the file")
        with contextlib.suppress(_Died):
            await asyncio.to_thread(_render_now, env.mirror)
        sid = env.sid(kept["id"])
    monkeypatch.undo()
    assert (tmp_path / ".statusd" / "store.sqlite3.mirror-next.md").exists()
    # While the daemon is down a human edits the file it really wrote.
    (tmp_path / ".project_status.md").write_text(
        text.replace(f"In the file (task, medium) ^{sid}", f"Edited (task, high) ^{sid}")
    )
    async with mirror_env(tmp_path) as env:
        assert sorted(i["title"] for i in env.items()) == ["Edited", "Never reached the file"]
        assert not (tmp_path / ".statusd" / "store.sqlite3.mirror-next.md").exists()


class _Died(Exception):
    """Stands for the process being killed (nothing after it runs)."""


def _render_now(mirror: Mirror) -> str:
    mirror.state = "running"
    try:
        return mirror._render_and_write()
    finally:
        mirror.state = "paused"


async def test_a_crash_after_importing_a_save_but_before_writing_ids_back_creates_nothing_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The import commits; the file still holds the human's new lines without ids until the next
    # render. A kill -9 between left the next start importing the same save again: duplicates.
    async with mirror_env(tmp_path) as env:
        item = await env.create_item("Existing")
        text = await env.written_with("Existing")
        line = f"- [ ] Existing (task, medium) ^{env.sid(item['id'])}"
        monkeypatch.setattr(Mirror, "_render_and_write", lambda self: "skipped")  # dies before the render
        saved = text.replace(line, f"{line}\n- [ ] Added by a human (task, low)")
        env.path.write_text(saved)
        assert (await env.mirror.import_file()) is not None
        assert [i["title"] for i in env.items()] == ["Existing", "Added by a human"]
        await env.update_item(item["id"], title="Changed by a tool after the import")
    monkeypatch.undo()
    assert env.path.read_text() == saved  # the file never got the new line's id
    async with mirror_env(tmp_path) as env:
        titles = sorted(i["title"] for i in env.items())
        assert titles == ["Added by a human", "Changed by a tool after the import"]  # nothing again, nothing reverted
        await env.written_with("Changed by a tool after the import")
        new = next(i for i in env.items() if i["title"] == "Added by a human")
        assert f"Added by a human (task, low) ^{env.sid(new['id'])}" in await env.settled()
