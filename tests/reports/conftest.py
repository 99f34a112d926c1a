"""The hand-built week of test_summary.py, for every report's tests."""

from tests.reports.test_summary import week  # noqa: F401 - the fixture, shared
