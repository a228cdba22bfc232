from __future__ import annotations

import pytest

from statusd.client import VersionMismatchError


async def test_create_then_stale_update_over_socket(daemon):
    async with daemon.client("claude-code") as c:
        item = await c.call("create_work_item", item_type="task", title="Test Task")
        assert item["created_by"] == "claude-code"
        done = await c.call("update_work_item", id=item["id"], version=1, title="renamed")
        assert done["version"] == 2 and done["success"] is True and done["sync"] == "local_only"
        with pytest.raises(VersionMismatchError) as info:
            await c.call("update_work_item", id=item["id"], version=1, title="stale")
        assert (info.value.expected_version, info.value.actual_version) == (1, 2)
