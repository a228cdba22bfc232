"""Real public status files nobody here wrote (tests/fixtures/real_status, sources in its README).

Each is dry-run, failed on purpose (byte-identical afterwards), migrated at the mirror's first start
with every original line accounted for, and re-run without duplicates.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from mirror_support import mirror_env
from test_freeform_migration import account_for_every_line

from statusd.store import Store
from statusd.sync.migrate import migrate_path

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "real_status"
REAL = sorted(p.name for p in FIXTURES.glob("*.md") if p.name != "README.md")


def _count(store: Store, table: str) -> int:
    return int(store.reader.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


@pytest.mark.parametrize("name", REAL)
async def test_real_file_dry_run_and_injected_failure_change_nothing(tmp_path: Path, name: str) -> None:
    original = (FIXTURES / name).read_bytes()
    path = tmp_path / ".project_status.md"
    path.write_bytes(original)
    store = Store(tmp_path / ".statusd" / "store.sqlite3", machine="test")
    store.open()
    try:
        history = _count(store, "history")  # a new store records its default configuration
        dry = await migrate_path(store, path, dry_run=True)
        assert dry["success"] is True and dry["rollback_executed"] is True
        failed = await migrate_path(store, path, fail="work_items")
        assert failed["success"] is False and failed["rollback_executed"] is True
        assert path.read_bytes() == original
        assert not (tmp_path / ".project_status.md.backup").exists()
        assert _count(store, "work_items") == 0 and _count(store, "history") == history
    finally:
        store.close()


@pytest.mark.parametrize("name", REAL)
async def test_real_file_first_start_accounts_for_every_line_and_reruns_idempotently(tmp_path: Path, name: str) -> None:
    original = (FIXTURES / name).read_text(encoding="utf-8")
    (tmp_path / ".project_status.md").write_text(original, encoding="utf-8")
    async with mirror_env(tmp_path) as env:
        assert env.mirror.state == "running", env.mirror.reason
        assert (tmp_path / ".project_status.md.backup").read_text(encoding="utf-8") == original
        await env.written_with("<!-- statusd mirror")
        account_for_every_line(env, original)
        before = _count(env.store, "work_items")
        again = await migrate_path(env.store, tmp_path / ".project_status.md.backup")
        assert again["success"] is True
        assert _count(env.store, "work_items") == before


async def test_migrated_items_keep_the_file_order_in_the_mirror(tmp_path: Path) -> None:
    """Regression: one transaction gave every item the same created_at, so the mirror listed them by
    random id instead of in the order the file had them."""
    titles = [f"step {c} of the rollout" for c in "qwertyuiopasdfgh"]
    original = "# Plan\n\n## Next Steps\n" + "".join(f"- [ ] {t}\n" for t in titles)
    (tmp_path / ".project_status.md").write_text(original, encoding="utf-8")
    async with mirror_env(tmp_path) as env:
        text = await env.written_with("<!-- statusd mirror")
        lines = [x for x in text.split("\n") if x.startswith("- [ ] step ")]
        assert [x.split(" (task")[0].removeprefix("- [ ] ") for x in lines] == titles
