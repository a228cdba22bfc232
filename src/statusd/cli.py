"""The ``statusd`` command: argument parsing and printing only.

``statusd mcp`` is dispatched before anything heavy is imported: stdio MCP clients spawn it per
session and expect their first answer within 150 ms. The commands that only ask the daemon
(``status``, ``ready``, ``show``, ``conflicts``, ``sync``, ``call``) go through
:mod:`statusd.cli_fast` first, which imports neither typer nor pydantic nor the SDK.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["mcp"]:
        from statusd.daemon import bridge

        sys.exit(bridge.main(args[1:]))
    from statusd.cli_fast import try_fast
    from statusd.cli_run import try_run

    code = try_run(args) if args[:1] == ["run"] else try_fast(args)
    if code is not None:
        sys.exit(code)
    from statusd.cli_app import app

    app(args=args, prog_name="statusd")


if __name__ == "__main__":
    main()
