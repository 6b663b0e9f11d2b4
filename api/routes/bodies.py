"""JSON request bodies: read raw and validated by the same code the embedded API uses.

FastAPI's own body validation would answer in its own words and could not tell ``workmode``
from an ignorable unknown field; the models still document each body in ``/openapi.json``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from engine import Engine, FieldError, OcpTaskError, RequestInvalid, Task
from engine.text import surrogate_path

_SCHEMAS: dict[str, Any] = {}
Submitted = TypeVar("Submitted", Task, list[Task])


def documented(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` for a route whose JSON body is ``model``."""
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    _SCHEMAS.update(schema.pop("$defs", {}))
    _SCHEMAS[model.__name__] = schema
    ref = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": ref}}}}


def documented_array(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` for a route whose JSON body is an array of ``model``."""
    extra = documented(model)
    content = extra["requestBody"]["content"]["application/json"]
    content["schema"] = {"type": "array", "items": content["schema"]}
    return extra


def extra_schemas() -> dict[str, Any]:
    return dict(_SCHEMAS)


async def submitted(
    request: Request, creator: str, submit: Callable[[Engine, Any, str], Submitted]
) -> Submitted:
    """A create route's whole work: the body read as JSON and handed, with the caller's name,
    to the embedded call that validates it and submits its task or tasks (off the event
    loop)."""
    body = await json_body(request)
    engine = request.app.state.engine
    return await run_in_threadpool(submit, engine, body, creator)


class NotJson(OcpTaskError):
    """A body sent as anything but JSON: OCP's Spring answers 415 (its COM10003, an invalid
    request), whatever the bytes are. A call without a body is never asked for one."""

    code = 10003


def _json_type(content_type: str) -> bool:
    kind = content_type.partition(";")[0].strip().lower()
    return kind == "application/json" or (
        kind.startswith("application/") and kind.endswith("+json")
    )


async def json_body(request: Request, *, required: bool = True) -> Any:
    """The request's JSON body; ``None`` for an empty one where the body is optional (then no
    Content-Type is asked for either)."""
    if not required and not (await request.body()).strip():
        return None
    content_type = request.headers.get("content-type", "")
    if not _json_type(content_type):
        sent = f"Content-Type {content_type!r}" if content_type else "a body with no Content-Type"
        raise NotJson(
            f"Invalid request. Cause: {sent} is not supported; send the body as JSON "
            "(Content-Type: application/json)"
        )
    raw = await request.body()
    if not raw.strip():
        raise RequestInvalid([FieldError("(body)", "a JSON body is required")])
    try:
        parsed = json.loads(raw, parse_constant=_not_json)
    except RecursionError:
        raise RequestInvalid([FieldError("(body)", "body is nested too deeply")]) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise RequestInvalid([FieldError("(body)", f"body is not valid JSON: {exc}")]) from None
    where = surrogate_path(parsed)
    if where is not None:  # it could be neither stored nor answered as UTF-8
        raise RequestInvalid(
            [FieldError(where, "must not contain a lone surrogate (\\ud800-\\udfff)")]
        )
    return parsed


def _not_json(constant: str) -> Any:
    """NaN and Infinity are Python's extensions to JSON: other clients could not read them back."""
    raise ValueError(f"{constant} is not a JSON value")
