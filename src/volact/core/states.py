"""The client states of SPEC §3 (shared by the client machine, the protocol and the host)."""

from __future__ import annotations

import enum


class State(enum.StrEnum):
    UNLICENSED = "unlicensed"
    OOB_GRACE = "oob_grace"
    LICENSED = "licensed"
    OOT_GRACE = "oot_grace"
    NOTIFICATION = "notification"
