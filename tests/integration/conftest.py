"""Fixtures of the end-to-end tests (defined in tests/integration/helpers.py)."""

from tests.integration.helpers import hosts, vendor_world

__all__ = ["hosts", "vendor_world"]
