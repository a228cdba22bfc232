"""The release fixtures of R9 (tests/fixtures/v0_1_0, written by make_fixtures.py with v0.1.0's code)."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import asyncpg

FIXTURES = Path(__file__).parent / "fixtures"
V010 = FIXTURES / "v0_1_0"
V010_SCHEMA = "r9_v010_hub"


def v010_counts() -> dict[str, Any]:
    return dict(json.loads((V010 / "counts.json").read_text()))


def copy_v010_store(dest_dir: Path) -> Path:
    """A private copy of the v0.1.0 store (tests upgrade it in place; the fixture never changes)."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / "store.sqlite3"
    shutil.copyfile(V010 / "store.sqlite3", dest)
    return dest


def table_rows(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in primary-key order, restricted to the columns the old file had."""
    conn = sqlite3.connect(path)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")]
        out: dict[str, list[tuple[Any, ...]]] = {}
        for t in tables:
            cols = [r[1] for r in conn.execute(f"PRAGMA table_info({t})")]
            out[t] = [tuple(r) for r in conn.execute(f"SELECT {', '.join(cols)} FROM {t} ORDER BY 1, 2")]
        return out
    finally:
        conn.close()


def columns(path: Path) -> dict[str, list[str]]:
    conn = sqlite3.connect(path)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {t: [r[1] for r in conn.execute(f"PRAGMA table_info({t})")] for t in tables}
    finally:
        conn.close()


def rows_in_columns(path: Path, table: str, cols: list[str]) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(path)
    try:
        return [tuple(r) for r in conn.execute(f"SELECT {', '.join(cols)} FROM {table} ORDER BY 1, 2")]
    finally:
        conn.close()


def v010_hub_sql(schema: str) -> str:
    """The v0.1.0 hub dump, renamed into ``schema`` (which the caller has already created)."""
    sql = (V010 / "hub.sql").read_text()
    sql = sql.replace(f"CREATE SCHEMA {V010_SCHEMA};", "")
    return sql.replace(V010_SCHEMA, schema)


async def restore_v010_hub(dsn: str, schema: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(v010_hub_sql(schema))
    finally:
        await conn.close()
