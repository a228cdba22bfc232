"""Every file a running daemon keeps beside its store is 0600, the mirror's last-written copy included."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from daemon_support import until
from inprocess_support import InProcessDaemon


def modes(directory: Path) -> dict[str, str]:
    return {f.name: oct(stat.S_IMODE(f.stat().st_mode)) for f in directory.iterdir()}


async def test_files_beside_the_store_are_private_with_the_mirror_on(daemon: InProcessDaemon) -> None:
    old = os.umask(0o022)
    try:
        async with daemon.client() as c:
            await c.call("create_work_item", item_type="task", title="mirrored")
        shadow = daemon.store_path.with_name(daemon.store_path.name + ".mirror-last.md")
        await until(shadow.exists, what="the mirror's last-written copy")
    finally:
        os.umask(old)
    found = modes(daemon.store_path.parent)
    assert found == {name: "0o600" for name in found}
