"""The OpenAPI 3 document, built from the app's own routes so it cannot drift from them."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from flask import Flask

from .validation import Field

_JSON_TYPES = {str: "string", int: "integer", bool: "boolean", list: "array", float: "number"}
_PARAM = re.compile(r"<(?:(\w+):)?(\w+)>")


def body(fields: dict[str, Field]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Attach a view's JSON body fields to it, for the document (parsing is read_json's)."""

    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        view.openapi_body = fields  # type: ignore[attr-defined]
        return view

    return decorator


def _schema(fields: dict[str, Field]) -> dict[str, Any]:
    props: dict[str, Any] = {}
    for name, spec in fields.items():
        kinds = spec.kind if isinstance(spec.kind, tuple) else (spec.kind,)
        prop: dict[str, Any] = {"type": _JSON_TYPES.get(kinds[0], "string")}
        if spec.max_length:
            prop["maxLength"] = spec.max_length
        if spec.choices:
            prop["enum"] = list(spec.choices)
        if spec.nullable:
            prop["nullable"] = True
        props[name] = prop
    required = [n for n, s in fields.items() if s.required]
    return {"type": "object", "properties": props, **({"required": required} if required else {})}


ERROR_SCHEMA = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "fields": {"type": "object", "additionalProperties": {"type": "string"}},
            },
            "required": ["code", "message"],
        }
    },
}


def build(app: Flask) -> dict[str, Any]:
    """Every /api/v1 route with its methods, parameters, body and who may call it."""
    paths: dict[str, Any] = {}
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if not rule.rule.startswith("/api/v1/"):
            continue
        view = app.view_functions[rule.endpoint]
        path = _PARAM.sub(r"{\2}", rule.rule[len("/api/v1") :])
        params = [
            {
                "name": name,
                "in": "path",
                "required": True,
                "schema": {"type": "integer" if conv == "int" else "string"},
            }
            for conv, name in _PARAM.findall(rule.rule)
        ]
        doc = (view.__doc__ or "").strip()
        role = getattr(view, "required_role", None)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            op: dict[str, Any] = {
                "operationId": f"{rule.endpoint}.{method.lower()}",
                "summary": doc.splitlines()[0] if doc else rule.endpoint,
                "responses": {
                    "default": {
                        "description": "An error",
                        "content": {"application/json": {"schema": ERROR_SCHEMA}},
                    },
                    "200": {"description": "OK"},
                },
            }
            if params:
                op["parameters"] = params
            if role is not None:
                op["x-required-role"] = role.value
            fields = getattr(view, "openapi_body", None)
            if fields and method in ("POST", "PATCH", "PUT"):
                op["requestBody"] = {
                    "required": True,
                    "content": {"application/json": {"schema": _schema(fields)}},
                }
            paths.setdefault(path, {})[method.lower()] = op
    return {
        "openapi": "3.0.3",
        "info": {"title": "Parley API", "version": "1"},
        "servers": [{"url": "/api/v1"}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "session": {"type": "apiKey", "in": "cookie", "name": "parley_session"},
                "csrf": {"type": "apiKey", "in": "header", "name": "X-CSRFToken"},
            }
        },
    }
