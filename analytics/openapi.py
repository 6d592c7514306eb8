"""The OpenAPI 3.1 description of the JSON APIs (ingest and Stats), served at `GET /api/openapi.json`.

Written as data next to the code it describes: the enums and limits come from the parsers themselves, so the
description cannot drift from what the server accepts. tests/test_fuzz_api.py generates requests from it
(Schemathesis) and checks every answer against it.
"""

from __future__ import annotations

from typing import Any

from analytics import beacon, query, stats_api
from analytics.rollup import DIMENSIONS

PATH = "/api/openapi.json"

_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "string", "description": "What is wrong, written for a person"}},
}
_INGEST_ERROR = {
    "type": "object",
    "required": ["error", "field"],
    "properties": {
        "error": {"type": "string"},
        "field": {"type": "string", "description": "The key of the body (as sent) that is wrong, or `body`"},
    },
}
_RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before retrying", "schema": {"type": "string"}}}
_DROPPED = {
    "X-Analytics-Dropped": {
        "description": "Set when the event was accepted but not counted, with the reason (bot, unknown site, "
        "excluded address or path, Global Privacy Control...)",
        "schema": {"type": "string"},
    }
}


def _json(schema: dict[str, Any], description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    answer: dict[str, Any] = {"description": description, "content": {"application/json": {"schema": schema}}}
    if headers:
        answer["headers"] = headers
    return answer


def _dimension() -> dict[str, Any]:
    names = sorted({*DIMENSIONS, "event:goal"} - {""})
    return {"anyOf": [{"enum": names}, {"type": "string", "pattern": "^event:props:.+"}]}


def _query_body() -> dict[str, Any]:
    dimension = _dimension()
    return {
        "type": "object",
        "required": ["site_id", "metrics", "date_range"],
        "properties": {
            "site_id": {"type": "string", "minLength": 1, "description": "The site's domain", "example": "example.com"},
            "metrics": {"type": "array", "minItems": 1, "items": {"enum": list(query.METRICS)}},
            "date_range": {
                "description": f"A shortcut, or two ISO dates between {query.FIRST_DAY} and {query.LAST_DAY} "
                f"spanning at most {query.MAX_RANGE_DAYS:,} days",
                "oneOf": [
                    {"enum": list(query.SHORTCUTS)},
                    {
                        "type": "array",
                        "minItems": 2,
                        "maxItems": 2,
                        "items": {"type": "string", "format": "date", "pattern": "^20[0-9]{2}-"},
                    },
                ],
            },
            "dimensions": {
                "type": "array",
                "maxItems": 2,
                "description": "One breakdown, one time dimension, or one of each; a time series has at most "
                f"{query.MAX_BUCKETS:,} buckets ({query.MAX_BREAKDOWN_BUCKETS:,} with a breakdown)",
                "items": {"anyOf": [dimension, {"enum": list(query.TIME_DIMENSIONS)}]},
            },
            "filters": {
                "type": "array",
                "maxItems": 1,
                "description": 'At most one filter, `["is", dimension, [value]]`',
                "items": {
                    "type": "array",
                    "prefixItems": [
                        {"const": "is"},
                        dimension,
                        {"type": "array", "minItems": 1, "maxItems": 1, "items": {"type": "string"}},
                    ],
                    "minItems": 3,
                    "maxItems": 3,
                },
            },
            "order_by": {
                "type": "array",
                "items": {
                    "type": "array",
                    "prefixItems": [{"type": "string"}, {"enum": ["asc", "desc"]}],
                    "minItems": 2,
                    "maxItems": 2,
                },
            },
            "pagination": {
                "type": "object",
                "properties": {
                    "limit": {"type": "integer", "minimum": 1, "maximum": query.MAX_LIMIT},
                    "offset": {"type": "integer", "minimum": 0},
                },
            },
            "include": {
                "type": "object",
                "properties": {
                    "comparisons": {
                        "anyOf": [
                            {"type": "null"},
                            {"const": False},
                            {
                                "type": "object",
                                "required": ["mode"],
                                "properties": {"mode": {"const": "previous_period"}},
                                "additionalProperties": False,
                            },
                        ]
                    },
                    "total_rows": {"type": "boolean"},
                },
            },
        },
    }


_NUMBER = {"type": "number"}
_RESULT = {
    "type": "object",
    "required": ["metrics", "dimensions"],
    "properties": {
        "metrics": {"type": "array", "items": _NUMBER},
        "dimensions": {"type": "array", "items": {"type": "string"}},
        "comparison": {
            "type": "object",
            "required": ["dimensions", "metrics", "change"],
            "properties": {
                "dimensions": {"type": "array", "items": {"type": "string"}},
                "metrics": {"type": "array", "items": _NUMBER},
                "change": {"type": "array", "items": {"type": ["number", "null"]}},
            },
        },
    },
}
_ANSWER = {
    "type": "object",
    "required": ["results", "meta", "query"],
    "properties": {
        "results": {"type": "array", "items": _RESULT},
        "meta": {"type": "object"},
        "query": {"type": "object", "description": "The query as answered, with date_range resolved to dates"},
    },
}


def _stats_answers(shared: bool) -> dict[str, Any]:
    answers = {
        "400": _json(_ERROR, "The query is malformed, too large, or cannot be answered exactly; the error says why"),
        "404": _json(
            _ERROR,
            "The shared link does not exist, expired, was revoked or needs its password"
            if shared
            else "The site does not exist or the key may not read it",
        ),
        "503": _json(
            _ERROR,
            "The database is unavailable, or the question ran past its time budget and was stopped",
            _RETRY_AFTER,
        ),
    }
    if not shared:
        answers["401"] = _json(_ERROR, "The API key is missing, wrong or revoked")
        answers["403"] = _json(_ERROR, "Dashboard session without its X-CSRF-Token header")
    return answers


def _query_operation(shared: bool) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": "Ask a question (Plausible Stats API v2 shape)" + (" through a shared link" if shared else ""),
        "operationId": "sharedQuery" if shared else "query",
        "tags": ["stats"],
        "requestBody": {"required": True, "content": {"application/json": {"schema": _query_body()}}},
        "responses": {
            "200": _json(_ANSWER, "The answer"),
            "413": _json(_ERROR, f"The body is larger than {stats_api.MAX_QUERY_BYTES:,} bytes"),
            **_stats_answers(shared),
        },
    }
    if shared:
        operation["security"] = []
        operation["parameters"] = [_TOKEN]
    return operation


def _realtime_operation(shared: bool) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": "The number of visitors of the last 5 minutes" + (" through a shared link" if shared else ""),
        "operationId": "sharedRealtime" if shared else "realtime",
        "tags": ["stats"],
        "parameters": [
            {
                "name": "site_id",
                "in": "query",
                "required": not shared,
                "schema": {"type": "string"},
                "description": "The site's domain" + (" (ignored: the link names its site)" if shared else ""),
            }
        ],
        "responses": {
            "200": _json({"type": "integer", "minimum": 0}, "The number of visitors"),
            **_stats_answers(shared),
        },
    }
    if shared:
        operation["security"] = []
        operation["parameters"].append(_TOKEN)
    return operation


_TOKEN = {
    "name": "token",
    "in": "path",
    "required": True,
    "schema": {"type": "string"},
    "description": "The shared link's token",
}


def _event_body() -> dict[str, Any]:
    scalar = {"type": ["string", "number", "boolean", "null"]}
    return {
        "type": "object",
        "required": ["name", "url", "domain"],
        "description": "Plausible's Events API body; the short keys of Plausible's script (n, u, d, r, p, $, i, "
        "h, w, sd, e) are accepted too",
        "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": beacon.MAX_NAME, "example": "pageview"},
            "url": {"type": "string", "format": "uri", "maxLength": beacon.MAX_URL},
            "domain": {"type": "string", "minLength": 1, "maxLength": beacon.MAX_DOMAIN, "example": "example.com"},
            "referrer": {"type": ["string", "null"], "maxLength": beacon.MAX_URL},
            "props": {
                "type": ["object", "null"],
                "maxProperties": beacon.MAX_PROPS,
                "additionalProperties": scalar,
                "description": "Custom properties; only the keys the site allows are stored (the others are dropped "
                "and counted), their values scrubbed of e-mail addresses, phone numbers, ids and tokens",
            },
            "revenue": {
                "type": ["object", "null"],
                "properties": {"amount": {"type": ["number", "string"]}, "currency": {"type": "string"}},
            },
            "interactive": {"type": "boolean"},
            "hash": {"type": "boolean"},
            "screen_width": {"type": "integer", "minimum": 0, "maximum": 100_000},
            "scroll_depth": {"type": "integer", "minimum": -1, "maximum": 100},
            "engagement_time": {"type": "integer", "minimum": 0, "maximum": 86_400_000},
        },
    }


def _ingest_refusals() -> dict[str, Any]:
    return {
        "400": _json(_INGEST_ERROR, "A field is missing or wrong; `field` names it"),
        "503": _json(_ERROR, "The server cannot store the event now (queue full, database failing)", _RETRY_AFTER),
    }


def document() -> dict[str, Any]:
    """The whole description (a new dict each time: callers may change theirs)."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "analytics",
            "version": "1",
            "description": "Privacy-first web analytics: the Plausible-compatible ingest API and Stats API. "
            "The Stats API takes an API key (`analytics apikey create --site DOMAIN`) as a Bearer token.",
        },
        "components": {
            "securitySchemes": {
                "apiKey": {"type": "http", "scheme": "bearer", "description": "An API key of a site"},
            }
        },
        "security": [{"apiKey": []}],
        "paths": {
            "/api/event": {
                "post": {
                    "summary": "Record an event (pageview, engagement or custom event)",
                    "operationId": "event",
                    "tags": ["ingest"],
                    "security": [],
                    "requestBody": {
                        "required": True,
                        "description": "JSON, also sent as text/plain by navigator.sendBeacon",
                        "content": {"application/json": {"schema": _event_body()}},
                    },
                    "responses": {
                        "202": {
                            "description": "Accepted (stored, or dropped as X-Analytics-Dropped says)",
                            "headers": _DROPPED,
                        },
                        "413": _json(_INGEST_ERROR, "The body is larger than ingest.max_body_bytes"),
                        **_ingest_refusals(),
                    },
                }
            },
            "/api/event.gif": {
                "get": {
                    "summary": "Record a pageview from a query string (for pages without JavaScript)",
                    "operationId": "pixel",
                    "tags": ["ingest"],
                    "security": [],
                    "parameters": [
                        {"name": "n", "in": "query", "schema": {"type": "string"}, "description": "Event name"},
                        {
                            "name": "u",
                            "in": "query",
                            "schema": {"type": "string"},
                            "description": "Page URL (default: the Referer header)",
                        },
                        {
                            "name": "d",
                            "in": "query",
                            "required": True,
                            "schema": {"type": "string"},
                            "description": "The site's domain",
                        },
                        {"name": "r", "in": "query", "schema": {"type": "string"}, "description": "Referrer"},
                    ],
                    "responses": {
                        "200": {
                            "description": "A transparent 1x1 GIF",
                            "headers": _DROPPED,
                            "content": {"image/gif": {"schema": {"type": "string", "format": "binary"}}},
                        },
                        **_ingest_refusals(),
                    },
                }
            },
            "/api/v2/query": {"post": _query_operation(False)},
            "/api/v1/stats/realtime/visitors": {"get": _realtime_operation(False)},
            "/share/{token}/api/v2/query": {"post": _query_operation(True)},
            "/share/{token}/api/v1/stats/realtime/visitors": {"get": _realtime_operation(True)},
            "/api/health": {
                "get": {
                    "summary": "Whether the server and its database answer, and how many events wait to be written",
                    "operationId": "health",
                    "security": [],
                    "responses": {
                        "200": _json(
                            {
                                "type": "object",
                                "required": ["status", "waiting_events"],
                                "properties": {
                                    "status": {"const": "ok"},
                                    "waiting_events": {"type": "integer", "minimum": 0},
                                },
                            },
                            "The server is up and its database answered",
                        ),
                        "503": _json(
                            {
                                "type": "object",
                                "required": ["status", "error", "waiting_events"],
                                "properties": {
                                    "status": {"const": "unavailable"},
                                    "error": {"type": "string"},
                                    "waiting_events": {"type": "integer", "minimum": 0},
                                },
                            },
                            "The database failed or did not answer within 2 seconds",
                        ),
                    },
                }
            },
        },
    }
