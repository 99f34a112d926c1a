"""The hand-built week of test_summary.py, for every report's tests; and the system
library the monthly report's PDF needs."""

from __future__ import annotations

import ctypes.util

import pytest

from tests.browser.conftest import _apt_get_install, _installing
from tests.reports.test_summary import week  # noqa: F401 - the fixture, shared


@pytest.fixture(scope="session", autouse=True)
def pango() -> None:
    """WeasyPrint draws text with Pango (Debian's libpango-1.0-0): installed when missing,
    as the browser tests install Chromium."""
    if ctypes.util.find_library("pango-1.0"):
        return
    with _installing():
        if not ctypes.util.find_library("pango-1.0"):
            _apt_get_install("libpango-1.0-0", "the Pango library")
