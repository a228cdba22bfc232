"""A mirror over a real store and a real file, with an injectable change source for fast tests."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sync_support import wait_for

from statusd import models as m
from statusd.store import Store, WriteContext, vendors, workitems
from statusd.store import entities as ent
from statusd.sync.markdown_model import short_ids
from statusd.sync.mirror import Mirror


@dataclass
class MirrorEnv:
    store: Store
    mirror: Mirror
    path: Path
    events: asyncio.Queue[set[str]] = field(default_factory=asyncio.Queue)

    def text(self) -> str:
        return self.path.read_text(encoding="utf-8")

    async def written_with(self, needle: str, within: float = 10.0) -> str:
        """Wait until the file contains ``needle``; return its text."""
        await wait_for(lambda: self.path.exists() and needle in self.text(), within=within, what=f"{needle!r} in file")
        return self.text()

    async def settled(self) -> str:
        """Wait until the mirror has nothing pending and return the file's text."""
        await wait_for(lambda: not self.mirror._dirty.is_set() and self.path.exists(), what="mirror idle")
        self.mirror.written.clear()
        self.mirror.changed()
        await wait_for(self.mirror.written.is_set, what="a render after the last change")
        return self.text()

    def human_save(self, text: str) -> None:
        """Save as an editor does: write a temp file, rename it over the mirror, announce it."""
        tmp = self.path.with_name(self.path.name + ".tmp~")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(self.path)
        self.events.put_nowait({self.path.name})

    async def create_item(self, title: str, **fields: Any) -> dict[str, Any]:
        fields.setdefault("item_type", "task")
        args = m.parse_args(m.CreateWorkItemArgs, {"title": title, **fields})
        return await self.store.write(workitems.create, WriteContext(actor="tool"), args)

    async def update_item(self, ident: str, **fields: Any) -> dict[str, Any]:
        fields.setdefault("version", self.item(ident)["version"])
        args = m.parse_args(m.UpdateWorkItemArgs, {"id": ident, **fields})
        return await self.store.write(workitems.update, WriteContext(actor="tool"), args)

    async def create_vendor(self, name: str, **fields: Any) -> dict[str, Any]:
        args = m.parse_args(m.CreateVendorArgs, {"name": name, **fields})
        return await self.store.write(vendors.create, WriteContext(actor="tool"), args)

    def item(self, ident: str) -> dict[str, Any]:
        row = self.store.read(ent.get, ent.WORK_ITEM, ident)
        assert row is not None
        return row

    def items(self, include_deleted: bool = False) -> list[dict[str, Any]]:
        sql = ent.WORK_ITEM.select + ("" if include_deleted else " WHERE deleted_at IS NULL")
        return [ent.decode(ent.WORK_ITEM, r) for r in self.store.reader.execute(sql + " ORDER BY created_at")]

    def sid(self, ident: str) -> str:
        ids = [r[0] for r in self.store.reader.execute("SELECT id FROM work_items")]
        return short_ids(ids)[ident]


@contextlib.asynccontextmanager
async def mirror_env(root: Path, *, start: bool = True, **kw: Any) -> AsyncIterator[MirrorEnv]:
    await asyncio.to_thread(root.mkdir, parents=True, exist_ok=True)
    store = Store(root / ".statusd" / "store.sqlite3", machine="test")
    store.open()
    env: MirrorEnv | None = None
    events: asyncio.Queue[set[str]] = asyncio.Queue()

    async def source(directory: Path) -> AsyncIterator[set[str]]:
        while True:
            yield await events.get()

    kw.setdefault("changes", source)
    mirror = Mirror(store, root / ".project_status.md", **kw)
    env = MirrorEnv(store, mirror, mirror.path, events)
    task: asyncio.Task[None] | None = None
    try:
        if start:
            await mirror.start()
            task = asyncio.create_task(mirror.run())
        yield env
    finally:
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await mirror.close()
        store.close()
