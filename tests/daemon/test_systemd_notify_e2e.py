"""A real daemon under a systemd-like notify socket: READY=1 once it listens, then the sync summary."""

from __future__ import annotations

import socket
import time
from pathlib import Path

from daemon_support import DaemonProcess, short_socket_dir


def test_daemon_reports_ready_and_status_to_systemd(tmp_path: Path) -> None:
    notify_dir = short_socket_dir()
    notify_path = notify_dir / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sink:
        sink.bind(str(notify_path))
        sink.settimeout(0.5)
        proc = DaemonProcess(tmp_path / "project", env={"NOTIFY_SOCKET": str(notify_path)})
        try:
            proc.start()
            messages: list[str] = []
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not any("pending" in m for m in messages):
                try:
                    messages.append(sink.recv(4096).decode())
                except TimeoutError:
                    continue
            assert any(m.startswith("READY=1") for m in messages), messages
            summary = [m for m in messages if m.startswith("STATUS=") and "pending" in m]
            assert summary and "test: standalone" in summary[0] and "0 conflicts" in summary[0], messages
            assert proc.stop() == 0
        finally:
            proc.cleanup()
