"""statusd: a local-first project-status tracker for AI coding assistants."""

__version__ = "0.1.0"
