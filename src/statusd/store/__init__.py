"""The local SQLite store: the primary copy of the project state on this machine."""

from statusd.store.db import Store, WriteContext

__all__ = ["Store", "WriteContext"]
