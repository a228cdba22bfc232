"""The sd_notify protocol without libsystemd: readiness, status line and watchdog pings.

Every function is a no-op returning False when ``$NOTIFY_SOCKET`` is unset (not under systemd,
or under launchd), so callers never branch on the service manager.
"""

from __future__ import annotations

import logging
import os
import socket
import sys

__all__ = ["notify", "ready", "status", "stopping", "watchdog_interval_s", "watchdog_ping"]

log = logging.getLogger(__name__)


def _address(raw: str) -> str | None:
    if raw.startswith("@"):
        # Abstract namespace: Linux only, spelled with a leading NUL on the wire.
        return "\0" + raw[1:] if sys.platform.startswith("linux") else None
    if raw.startswith("/"):
        return raw
    return None  # e.g. vsock:… addresses, which this implementation does not speak


def notify(state: str) -> bool:
    """Send ``state`` (newline-separated ``KEY=VALUE`` pairs) to the service manager.

    Return True when the datagram was sent; False when there is no manager or sending failed.
    """
    raw = os.environ.get("NOTIFY_SOCKET", "")
    if not raw:
        return False
    address = _address(raw)
    if address is None:
        log.debug("unsupported NOTIFY_SOCKET address %r", raw)
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            # Called from the event loop: a stalled manager must drop a ping, not block requests.
            sock.setblocking(False)
            sock.sendto(state.encode("utf-8"), address)
    except OSError as exc:
        log.debug("sd_notify to %r failed: %s", raw, exc)
        return False
    return True


def ready(status_text: str | None = None) -> bool:
    """Report start-up complete (the store is open and the socket listens)."""
    return notify("READY=1" if status_text is None else f"READY=1\nSTATUS={_one_line(status_text)}")


def status(text: str) -> bool:
    """Set the one-line status shown by ``systemctl status``."""
    return notify(f"STATUS={_one_line(text)}")


def stopping() -> bool:
    """Report that shutdown has begun."""
    return notify("STOPPING=1")


def watchdog_ping() -> bool:
    """Tell the watchdog the daemon is alive."""
    return notify("WATCHDOG=1")


def watchdog_interval_s() -> float | None:
    """Return the watchdog timeout in seconds, or None when no watchdog watches this process.

    Ping at least twice per interval, as sd_watchdog_enabled(3) recommends.
    """
    usec = os.environ.get("WATCHDOG_USEC", "")
    pid = os.environ.get("WATCHDOG_PID", "")
    # WATCHDOG_PID names the process meant; a child that inherited the variables is not it.
    if pid and (not (pid.isascii() and pid.isdigit()) or int(pid) != os.getpid()):
        return None
    if not (usec.isascii() and usec.isdigit()) or int(usec) == 0:
        return None
    return int(usec) / 1_000_000


def _one_line(text: str) -> str:
    # A newline would start a new KEY=VALUE assignment.
    return " ".join(text.splitlines())
