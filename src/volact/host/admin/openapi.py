"""The OpenAPI 3.1 document of the admin API, served at ``/admin/v1/openapi.json`` and kept in
``docs/admin-openapi.json`` (``tests/host/admin/test_openapi.py`` fails when they differ;
``scripts/gen_docs.py`` rewrites the file).

Every error answer, whatever its status, is the one error shape (``Error``).
"""

from __future__ import annotations

from typing import Any

from volact import __version__
from volact.host.admin.views import MAX_LIMIT

PREFIX = "/admin/v1"

_ERROR = {"$ref": "#/components/schemas/Error"}
_ERRORS = {
    "400": {
        "description": "A parameter is not valid.",
        "content": {"application/json": {"schema": _ERROR}},
    },
    "401": {
        "description": "The admin token is missing or wrong.",
        "content": {"application/json": {"schema": _ERROR}},
    },
    "default": {
        "description": "Any other error, in the one error shape.",
        "content": {"application/json": {"schema": _ERROR}},
    },
}


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


def _ok(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "200": {"description": description, "content": {"application/json": {"schema": schema}}},
        **_ERRORS,
    }


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


_NULLABLE_STRING = {"type": ["string", "null"]}
_TIME = {"type": ["string", "null"], "description": "ISO 8601 UTC"}
_LIMIT = {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}
_MOMENT = {"type": "integer", "minimum": 0, "maximum": 2**40, "description": "Unix seconds"}
_CMID_PATH = {
    "name": "cmid",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "format": "uuid"},
    "description": "The client's CMID (a UUID).",
}

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["ok", "error"],
        "properties": {
            "ok": {"const": False},
            "error": {
                "type": "object",
                "required": ["code", "message", "details"],
                "properties": {
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                    "details": {"type": "object"},
                },
            },
        },
    },
    "Group": {
        "type": "object",
        "required": ["group", "count", "threshold", "activating"],
        "properties": {
            "group": {"type": "string"},
            "count": {"type": "integer", "minimum": 0},
            "threshold": {"type": ["integer", "null"]},
            "activating": {"type": "boolean"},
            "validity": {"type": "integer"},
            "renewal_interval": {"type": "integer"},
            "retry_interval": {"type": "integer"},
        },
    },
    "Certificate": {
        "type": "object",
        "required": ["activated", "reason", "certificate"],
        "properties": {
            "activated": {"type": "boolean"},
            "reason": _NULLABLE_STRING,
            "certificate": {
                "type": ["object", "null"],
                "properties": {
                    "cert_id": {"type": "string"},
                    "vendor_id": {"type": "string"},
                    "host_id": {"type": "string"},
                    "customer": {"type": "string"},
                    "key_serial": {"type": "string"},
                    "groups": {"type": "array", "items": {"type": "string"}},
                    "not_before": {"type": "string"},
                    "not_after": {"type": "string"},
                    "remaining_seconds": {"type": "integer", "minimum": 0},
                },
            },
        },
    },
    "Status": {
        "type": "object",
        "required": ["host_id", "version", "time", "activated", "groups", "statistics"],
        "properties": {
            "host_id": {"type": "string"},
            "version": {"type": "string"},
            "time": {"type": "string"},
            "store": {"type": "string"},
            "activated": {"type": "boolean"},
            "reason": _NULLABLE_STRING,
            "certificate": {"type": ["object", "null"]},
            "groups": {"type": "array", "items": _ref("Group")},
            "statistics": {
                "type": "object",
                "required": ["total", "failed", "by_outcome", "by_state"],
                "properties": {
                    "total": {"type": "integer"},
                    "failed": {"type": "integer"},
                    "by_outcome": {"type": "object", "additionalProperties": {"type": "integer"}},
                    "by_state": {"type": "object", "additionalProperties": {"type": "integer"}},
                },
            },
        },
    },
    "Client": {
        "type": "object",
        "required": ["cmid", "group", "machine", "state", "blocked", "last_seen"],
        "properties": {
            "cmid": {"type": "string"},
            "group": {"type": "string"},
            "product": {"type": "string"},
            "machine": {"type": "string"},
            "fingerprint": {"type": "string"},
            "state": {"type": "string"},
            "blocked": {"type": "boolean"},
            "first_seen": _TIME,
            "last_seen": _TIME,
            "valid_until": _TIME,
            "fingerprint_changes": {"type": "integer", "minimum": 0},
        },
    },
    "ClientPage": {
        "type": "object",
        "required": ["total", "limit", "offset", "clients"],
        "properties": {
            "total": {"type": "integer", "minimum": 0},
            "limit": {"type": "integer"},
            "offset": {"type": "integer"},
            "clients": {"type": "array", "items": _ref("Client")},
        },
    },
    "Event": {
        "type": "object",
        "required": ["id", "at", "kind", "cmid", "group", "details"],
        "properties": {
            "id": {"type": "integer"},
            "at": {"type": "string"},
            "kind": {"type": "string"},
            "cmid": _NULLABLE_STRING,
            "group": _NULLABLE_STRING,
            "details": {"type": "object"},
        },
    },
    "EventList": {
        "type": "object",
        "required": ["limit", "events"],
        "properties": {
            "limit": {"type": "integer"},
            "events": {"type": "array", "items": _ref("Event")},
        },
    },
    "DNSResult": {
        "type": "object",
        "required": ["domain", "ok", "at"],
        "properties": {
            "domain": {"type": "string"},
            "ok": {"type": "boolean"},
            "at": _TIME,
            "reason": _NULLABLE_STRING,
            "error": _NULLABLE_STRING,
            "name": _NULLABLE_STRING,
            "target": _NULLABLE_STRING,
            "port": {"type": ["integer", "null"]},
            "server": _NULLABLE_STRING,
        },
    },
    "Blocked": {
        "type": "object",
        "required": ["cmid", "blocked", "groups"],
        "properties": {
            "cmid": {"type": "string"},
            "blocked": {"type": "boolean"},
            "groups": {"type": "integer", "minimum": 0},
        },
    },
}


def _get(
    summary: str, description: str, schema: dict[str, Any], parameters: list[Any] | None = None
) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": summary,
        "description": description,
        "responses": _ok(summary, schema),
    }
    if parameters:
        operation["parameters"] = parameters
    return {"get": operation}


def _block(blocked: bool) -> dict[str, Any]:
    verb = "Block" if blocked else "Unblock"
    return {
        "post": {
            "summary": f"{verb} a client",
            "description": (
                "Refuse the CMID from now on (client_blocked); it no longer counts."
                if blocked
                else "Readmit a blocked CMID."
            )
            + " 404 (not_found) when the host has never seen it.",
            "parameters": [_CMID_PATH],
            "responses": _ok(f"{verb}ed in every group it is known in.", _ref("Blocked")),
        }
    }


def document() -> dict[str, Any]:
    """The admin API's OpenAPI document."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "volact host admin API",
            "version": __version__,
            "description": (
                "The admin listener of `volact host serve` (127.0.0.1:7690 by default). Every "
                "request needs the admin token (`volact host admin-token`) as a bearer token; "
                "every error is the one error shape."
            ),
        },
        "security": [{"token": []}],
        "paths": {
            f"{PREFIX}/status": _get(
                "Host status", "Certificate, groups and request statistics.", _ref("Status")
            ),
            f"{PREFIX}/groups": _get(
                "Groups",
                "Each product group's count against its threshold.",
                {"type": "array", "items": _ref("Group")},
            ),
            f"{PREFIX}/certificate": _get(
                "Certificate", "The host certificate and its remaining time.", _ref("Certificate")
            ),
            f"{PREFIX}/clients": _get(
                "Clients",
                "The known clients (CMIDs), by group and first request, one page with the total.",
                _ref("ClientPage"),
                [
                    _query(
                        "q",
                        {"type": "string", "maxLength": 200},
                        "A CMID prefix or part of a machine name.",
                    ),
                    _query(
                        "group", {"type": "string", "maxLength": 200}, "Only this product group."
                    ),
                    _query(
                        "blocked",
                        {"type": "boolean"},
                        "Only blocked (true) or unblocked (false) clients.",
                    ),
                    _query("limit", _LIMIT, "At most this many (default 50)."),
                    _query(
                        "offset",
                        {"type": "integer", "minimum": 0, "maximum": 2**31},
                        "Skip the first N.",
                    ),
                ],
            ),
            f"{PREFIX}/clients/{{cmid}}/block": _block(True),
            f"{PREFIX}/clients/{{cmid}}/unblock": _block(False),
            f"{PREFIX}/events": _get(
                "Events",
                "The event log, newest first. Every filter is applied to the whole log (as far "
                "back as the event retention keeps it) before the limit.",
                _ref("EventList"),
                [
                    _query(
                        "kind",
                        {"type": "string", "maxLength": 200},
                        "Only this kind (activation_request, cloned_image, …).",
                    ),
                    _query("cmid", {"type": "string", "format": "uuid"}, "Only this CMID."),
                    _query("since", _MOMENT, "Only events at or after this time."),
                    _query("until", _MOMENT, "Only events at or before this time."),
                    _query("limit", _LIMIT, "At most this many (default 100)."),
                ],
            ),
            f"{PREFIX}/dns": _get(
                "DNS publishing",
                "The last publishing result per domain.",
                {"type": "array", "items": _ref("DNSResult")},
            ),
        },
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"token": {"type": "http", "scheme": "bearer"}},
        },
    }
