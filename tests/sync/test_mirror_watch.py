"""The mirror with the real directory watcher (watchfiles) and saves made the way editors make them."""

from __future__ import annotations

import os
from pathlib import Path

from mirror_support import mirror_env
from sync_support import wait_for

from statusd.sync.mirror import watch_directory


def rename_save(path: Path, text: str, tmp_name: str) -> None:
    """What vim (backupcopy=no), VS Code and most editors do: write a new file, rename it over the old one."""
    tmp = path.with_name(tmp_name)
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


async def test_rename_save_with_swap_files_around_it(tmp_path: Path) -> None:
    async with mirror_env(tmp_path, changes=watch_directory) as env:
        item = await env.create_item("Watched item")
        text = await env.written_with("Watched item")
        sid = env.sid(item["id"])

        # vim's dance: a swap file, the 4913 write probe, a backup, then the rename over the original.
        swap = tmp_path / f".{env.path.name}.swp"
        swap.write_bytes(b"\x00binary swap\x00")
        (tmp_path / "4913").write_text("")
        (tmp_path / "4913").unlink()
        rename_save(
            env.path, text.replace(f"Watched item (task, medium) ^{sid}", f"Edited in vim (task, high) ^{sid}"), "x.tmp"
        )
        swap.unlink()

        await wait_for(lambda: env.item(item["id"])["title"] == "Edited in vim", what="the rename-save imported")
        assert env.item(item["id"])["priority"] == "high"
        assert env.mirror.state == "running"


async def test_two_quick_saves_in_a_row(tmp_path: Path) -> None:
    async with mirror_env(tmp_path, changes=watch_directory) as env:
        item = await env.create_item("Quick")
        text = await env.written_with("Quick")
        sid = env.sid(item["id"])
        line = f"- [ ] Quick (task, medium) ^{sid}"

        first = text.replace(line, f"- [ ] Quick one (task, medium) ^{sid}\n- [ ] Brand new line (task, low)")
        second = text.replace(line, f"- [ ] Quick two (task, medium) ^{sid}\n- [ ] Brand new line (task, high)")
        rename_save(env.path, first, ".a.tmp")
        rename_save(env.path, second, ".b.tmp")  # before the mirror has had a chance to write ids back

        await wait_for(lambda: env.item(item["id"])["title"] == "Quick two", what="the second save applied")
        await env.written_with("Brand new line (task, high) ^")
        new = [i for i in env.items() if i["title"] == "Brand new line"]
        assert len(new) == 1, "the line added in the first save was created once, not twice"
        assert new[0]["priority"] == "high"
        assert env.item(item["id"])["version"] in (2, 3)  # one or two imports, never a conflict with itself
        conflicts = env.store.reader.execute("SELECT COUNT(*) FROM conflicts").fetchone()[0]
        assert conflicts == 0


async def test_a_save_in_place_written_in_two_steps(tmp_path: Path) -> None:
    """An editor that truncates and writes in place: the half-written file is not imported as deletions."""
    async with mirror_env(tmp_path, changes=watch_directory) as env:
        keep = [await env.create_item(f"Item {i}") for i in range(5)]
        text = await env.written_with("Item 4")
        half = text[: text.index("Item 2")]
        fd = os.open(env.path, os.O_WRONLY | os.O_TRUNC)
        try:
            os.write(fd, half.encode())
            os.write(fd, text[len(half) :].replace("Item 3", "Item three").encode())
        finally:
            os.close(fd)
        await wait_for(lambda: any(i["title"] == "Item three" for i in env.items()), what="the whole save imported")
        assert [i["deleted_at"] for i in env.items(include_deleted=True)] == [None] * 5
        assert len(keep) == 5


async def test_an_older_render_put_back_is_a_save_not_an_own_write(tmp_path: Path) -> None:
    """Regression: an editor's undo (or git checkout) back to bytes the mirror once wrote was taken for
    the mirror's own write: the file and the store drifted apart, and the next render dropped the
    human's own section from the file."""
    async with mirror_env(tmp_path, changes=watch_directory) as env:
        item = await env.create_item("Original title")
        await env.written_with("Original title")
        sid = env.sid(item["id"])
        rename_save(env.path, env.text() + "## Notes\n\nkeep me\n", ".n.tmp")
        await wait_for(lambda: env.mirror.imports == 1, what="the notes imported")
        with_notes = await env.settled()  # a render of the mirror's own, now with the notes

        # Edit the title and drop the notes; the mirror writes the result back.
        edited = with_notes.replace("Original title (task", "Edited title (task").replace("## Notes\n\nkeep me\n", "")
        rename_save(env.path, edited, ".e.tmp")
        await wait_for(lambda: env.item(item["id"])["title"] == "Edited title", what="the edit imported")
        await env.settled()

        # Undo both in the editor: the file is byte for byte an earlier render of the mirror's.
        rename_save(env.path, with_notes, ".u.tmp")
        await wait_for(lambda: env.item(item["id"])["title"] == "Original title", what="the undo imported")
        await env.create_item("A later tool write")
        text = await env.written_with("A later tool write")
        assert "## Notes\n\nkeep me\n" in text
        assert f"Original title (task, medium) ^{sid}" in text


async def test_a_save_with_a_byte_order_mark_keeps_one_marker_line(tmp_path: Path) -> None:
    """Regression: a UTF-8 BOM (Notepad, VS Code "UTF-8 with BOM") hid the marker line, which was then
    kept as the human's text: every later render carried the marker twice."""
    async with mirror_env(tmp_path, changes=watch_directory) as env:
        item = await env.create_item("Saved on Windows")
        text = await env.written_with("Saved on Windows")
        rename_save(env.path, "\ufeff" + text.replace("Saved on Windows (task", "Saved with a BOM (task"), ".b.tmp")
        await wait_for(lambda: env.item(item["id"])["title"] == "Saved with a BOM", what="the BOM save imported")
        await env.create_item("Later")
        text = await env.written_with("Later")
        assert text.count("<!-- statusd mirror") == 1 and "\ufeff" not in text
        assert env.mirror.state == "running"


async def test_nested_items_indented_with_a_tab_or_four_spaces(tmp_path: Path) -> None:
    """Regression: an editor's tab key (a tab, or four spaces) made a child line unparseable and paused
    the mirror; nesting is relative, as in Markdown."""
    async with mirror_env(tmp_path, changes=watch_directory) as env:
        parent = await env.create_item("Parent", item_type="project")
        text = await env.written_with("Parent")
        line = f"- [ ] Parent (project, medium) ^{env.sid(parent['id'])}"
        children = "\t- [ ] Tab child (task, low)\n    - [ ] Four-space child (task, low)\n        - [ ] Grandchild"
        added = f"{line}\n{children}"
        rename_save(env.path, text.replace(line, added), ".t.tmp")
        await env.written_with("Grandchild (task, medium) ^")
        by_title = {i["title"]: i for i in env.items()}
        assert by_title["Tab child"]["parent_id"] == parent["id"]
        assert by_title["Four-space child"]["parent_id"] == parent["id"]
        assert by_title["Grandchild"]["parent_id"] == by_title["Four-space child"]["id"]
        assert env.mirror.state == "running"
        assert "  - [ ] Tab child (task, low) ^" in env.text()  # rendered back two spaces per level
