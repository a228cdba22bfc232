"""Fingerprints are stored in every imported item (``metadata.import_state.seen``): the fast paths
must hash exactly what the JSON definition hashes, or every re-import would see changed fields."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from statusd.sync.importers.plan import fingerprint

VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=6,
)


def reference(value: Any) -> str:
    raw = "s" + value if isinstance(value, str) else json.dumps(
        value, sort_keys=True, ensure_ascii=False, separators=(",", ":")
    )
    return hashlib.sha1(raw.encode("utf-8", "surrogatepass")).hexdigest()[:12]


@given(VALUES)
def test_fingerprint_is_the_json_definition(value: Any) -> None:
    assert fingerprint(value) == reference(value)


def test_fingerprints_of_earlier_imports_still_match() -> None:
    # Written by earlier builds into imported items' metadata.
    assert fingerprint(None) == hashlib.sha1(b"null").hexdigest()[:12]
    assert fingerprint(False) == hashlib.sha1(b"false").hexdigest()[:12]
    assert fingerprint(1) != fingerprint(True) and fingerprint(0) != fingerprint(False)
    assert fingerprint("null") != fingerprint(None)
