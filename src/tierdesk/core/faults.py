"""Crash points for the crash tests: ``point(name)`` kills the process (SIGKILL, no
clean-up) the n-th time it passes ``name`` when ``TIERDESK_FAULT=name:n`` is set, and does
nothing otherwise. Only tests set it; it exists so they can stop a worker exactly between
two steps whose order matters (e.g. a message stored but not yet flagged on the server).
"""

from __future__ import annotations

import os
import signal

_passed: dict[str, int] = {}


def point(name: str) -> None:
    wanted = os.environ.get("TIERDESK_FAULT")
    if not wanted:
        return
    target, _, count = wanted.partition(":")
    if target != name:
        return
    _passed[name] = _passed.get(name, 0) + 1
    if _passed[name] >= int(count or 1):
        os.kill(os.getpid(), signal.SIGKILL)
