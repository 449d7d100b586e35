"""Reading a JSON request body strictly: the right media type, valid UTF-8, valid JSON,
an object, and fields of the right types. Every failure is a :class:`ParleyError`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from flask import request
from werkzeug.routing import IntegerConverter

from .errors import ParleyError


@dataclass(frozen=True)
class Field:
    """One expected field of a JSON object."""

    kind: type | tuple[type, ...]
    required: bool = True
    nullable: bool = False
    max_length: int | None = None
    choices: tuple[str, ...] | None = None
    # Integers must fit the database's 32-bit columns (ids, days, positions).
    minimum: int = -(2**31)
    maximum: int = 2**31 - 1


_TYPE_NAMES = {str: "a string", int: "an integer", bool: "true or false", list: "a list"}


def _type_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(_TYPE_NAMES.get(k, k.__name__) for k in kinds)


def check_text(name: str, value: str) -> None:
    """Refuse text that cannot be stored faithfully: NUL bytes and lone surrogates."""
    if "\x00" in value:
        raise ParleyError("nul_byte", f"'{name}' contains a NUL byte.", 400, {name: "NUL byte"})
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ParleyError(
            "invalid_text", f"'{name}' is not valid Unicode text.", 400, {name: "invalid text"}
        ) from None


def read_json(fields: dict[str, Field]) -> dict[str, Any]:
    """Parse and check the request body against ``fields``; unknown keys are ignored."""
    if not request.is_json:
        raise ParleyError(
            "unsupported_media_type", "Send JSON with Content-Type: application/json.", 415
        )
    raw = request.get_data(cache=True)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ParleyError("invalid_utf8", "The request body is not valid UTF-8.", 400) from None
    try:
        data = json.loads(text)
    except ValueError:
        raise ParleyError("malformed_json", "The request body is not valid JSON.", 400) from None
    if not isinstance(data, dict):
        raise ParleyError("malformed_json", "The request body must be a JSON object.", 400)

    problems: dict[str, str] = {}
    out: dict[str, Any] = {}
    for name, spec in fields.items():
        if name not in data:
            if spec.required:
                problems[name] = "This field is required."
            continue
        value = data[name]
        if value is None:
            if spec.nullable or not spec.required:
                out[name] = None
            else:
                problems[name] = f"Must be {_type_name(spec.kind)}."
            continue
        kinds = spec.kind if isinstance(spec.kind, tuple) else (spec.kind,)
        # bool is a subclass of int in Python, but not in JSON.
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            problems[name] = f"Must be {_type_name(spec.kind)}."
            continue
        out_of_range = isinstance(value, int) and not spec.minimum <= value <= spec.maximum
        if out_of_range and not isinstance(value, bool):
            problems[name] = f"Must be between {spec.minimum} and {spec.maximum}."
            continue
        if isinstance(value, str):
            check_text(name, value)
            if spec.max_length is not None and len(value) > spec.max_length:
                problems[name] = f"At most {spec.max_length} characters."
                continue
            if spec.choices is not None and value not in spec.choices:
                problems[name] = "Must be one of: " + ", ".join(spec.choices) + "."
                continue
        out[name] = value
    if problems:
        raise ParleyError("validation_failed", "Some fields are missing or invalid.", 422, problems)
    return out


def query_int(name: str, default: int, minimum: int = 1, maximum: int = 2**31 - 1) -> int:
    """An integer query parameter, with a clear error rather than a silent default."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ParleyError(
            "invalid_parameter", f"'{name}' must be an integer.", 400, {name: "not an integer"}
        ) from None
    if value < minimum or value > maximum:
        bound = f"between {minimum} and {maximum}"
        raise ParleyError(
            "invalid_parameter", f"'{name}' must be {bound}.", 400, {name: "out of range"}
        )
    return value


def query_choice(name: str, choices: tuple[str, ...], default: str) -> str:
    raw = request.args.get(name) or default
    if raw not in choices:
        raise ParleyError(
            "invalid_parameter",
            f"'{name}' must be one of: {', '.join(choices)}.",
            400,
            {name: "unknown value"},
        )
    return raw


class BoundedIntConverter(IntegerConverter):
    """``<int:id>`` in URLs, but never beyond a 32-bit id: a larger number is a 404, not
    an overflow in the database driver."""

    def __init__(self, map: Any, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", 2**31 - 1)
        super().__init__(map, *args, **kwargs)
