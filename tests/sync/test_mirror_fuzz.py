"""R6, markdown half: fuzzed human saves never crash the mirror, never overwrite the human's file, never lose data."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
from mirror_support import MirrorEnv, mirror_env

from soak import bounded
from statusd.sync.markdown_parse import parse
from statusd.sync.mirror import MAX_FILE_BYTES

# STATUSD_FUZZ_SAVES sets the count; else 40 in the default suite, 2,000 with STATUSD_SOAK=1.
SAVES = int(os.environ.get("STATUSD_FUZZ_SAVES") or bounded(40, 2000))


def mutate(rng: random.Random, text: str) -> bytes:
    """One hostile or clumsy save of ``text``."""
    kind = rng.choice(["edit", "edit", "edit", "truncate", "garbage", "binary", "huge", "shuffle", "empty", "dup"])
    lines = text.split("\n")
    if kind == "edit":
        for _ in range(rng.randint(1, 4)):
            i = rng.randrange(len(lines))
            op = rng.choice(["drop", "indent", "dedent", "retitle", "box", "attrs", "insert", "tag"])
            if op == "drop":
                lines.pop(i)
            elif op == "indent":
                lines[i] = "  " + lines[i]
            elif op == "dedent":
                lines[i] = lines[i].removeprefix("  ")
            elif op == "retitle":
                lines[i] = lines[i].replace("Item", rng.choice(["Thing", "", "x" * 250, "Item\\n2", "Ítem ✓"]), 1)
            elif op == "box":
                lines[i] = lines[i].replace("[ ]", rng.choice(["[x]", "[?]", "[]"]), 1)
            elif op == "attrs":
                lines[i] = lines[i].replace("(task, medium)", rng.choice(["(task, high)", "(epic, x)", "(task,"]), 1)
            elif op == "insert":
                lines.insert(i, rng.choice(["- [ ] fuzz new", "## Vendors", "random prose", "```", "- broken: line"]))
            else:
                lines[i] = lines[i] + " ^" + "".join(rng.choice("0123456789abcdef") for _ in range(8))
        return "\n".join(lines).encode()
    if kind == "truncate":
        return text.encode()[: rng.randrange(len(text) + 1)]
    if kind == "garbage":
        return "".join(chr(rng.randrange(32, 0x2FFF)) for _ in range(rng.randrange(1, 400))).encode()
    if kind == "binary":
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300)))
    if kind == "huge":
        return text.encode() + b"\n## Notes\n\n" + b"x" * (MAX_FILE_BYTES + 10)
    if kind == "shuffle":
        rng.shuffle(lines)
        return "\n".join(lines).encode()
    if kind == "dup":
        return (text + text).encode()
    return b""


def counts(env: MirrorEnv) -> tuple[int, int]:
    rows = env.store.reader.execute("SELECT COUNT(*), COUNT(deleted_at) FROM work_items").fetchone()
    return int(rows[0]), int(rows[1])


@pytest.mark.soak
async def test_fuzzed_saves(tmp_path: Path) -> None:
    rng = random.Random(6)
    async with mirror_env(tmp_path) as env:
        for i in range(8):
            await env.create_item(f"Item {i}")
        await env.create_vendor("vendor_a")
        good = await env.written_with("Item 7")
        seen_rows = counts(env)[0]
        for n in range(SAVES):
            base = env.text() if env.mirror.state == "running" else good
            data = mutate(rng, base)
            env.path.write_bytes(data)
            await env.mirror.import_file()  # never raises

            try:
                parse(data.decode("utf-8"))
                parses = len(data) <= MAX_FILE_BYTES
            except Exception:
                parses = False
            if not parses:
                assert env.mirror.state == "paused", f"save {n} did not parse but the mirror kept running"
                assert env.mirror.error is not None and "line" in env.mirror.error
                await env.mirror.flush()
                assert env.path.read_bytes() == data, f"save {n}: the human's unparseable file was overwritten"
            total, _deleted = counts(env)
            assert total >= seen_rows, "a row disappeared: only soft deletes are allowed"
            seen_rows = total
            assert env.store.reader.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            if env.mirror.state == "running":
                good = await env.settled()

        # A good save brings the mirror back whatever happened before.
        env.path.write_text(good)
        await env.mirror.import_file()
        assert env.mirror.state == "running"
