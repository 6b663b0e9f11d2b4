"""Turning pydantic's validation errors into our RequestInvalid, with OCP-style field paths.

Also the text types requests share: :func:`name_text` for identifiers (names, usernames,
versions, addresses) and :func:`value_text` for free-form values, both with a length limit and a
character check that says which character is wrong and where.
"""

from __future__ import annotations

import types
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from pydantic_core import PydanticCustomError

from engine import FieldError, RequestInvalid
from engine.text import BLANK_LOOKALIKES, NAME_FORBIDDEN, VALUE_FORBIDDEN, first_forbidden

M = TypeVar("M", bound=BaseModel)


def _no_boolean(value: Any) -> Any:
    """Jackson reads ``"2883"`` as the number 2883 but never ``true`` as 1, nor ``"1_000"``
    (Python's digit separator) as anything."""
    if isinstance(value, bool):
        raise _fail("int_type", "Input should be a valid integer, not a boolean")
    if isinstance(value, str) and "_" in value:
        raise _fail("int_parsing", "Input should be a valid integer, written in digits")
    return value


def _boolean(value: Any) -> Any:
    """``true``/``false``, also as strings, as Jackson reads them; nothing else."""
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    if not isinstance(value, bool):
        raise _fail("bool_type", "Input should be a valid boolean: true or false")
    return value


class OcpBody(BaseModel):
    """A request body read as OCP's Jackson reads one: a numeric string is a number (``"port":
    "2883"``), a number is a string where a string is wanted, and unknown fields are ignored (OCP's
    own samples carry undocumented ones). A boolean is never a number. Stricter than Jackson,
    which truncates 2883.5 to 2883: a fraction is refused for a whole number (ours: a port or an
    id that was cut would be the wrong one). A field that differs from a known one only by case
    is refused by ``parse``."""

    model_config = ConfigDict(strict=False, coerce_numbers_to_str=True, extra="ignore")


Whole = Annotated[int, BeforeValidator(_no_boolean)]
Flag = Annotated[bool, BeforeValidator(_boolean)]
Port = Annotated[Whole, Field(ge=1, le=65535)]
# OCP keeps ids in BIGINT columns: a signed 64-bit integer.
Id = Annotated[Whole, Field(ge=1, le=2**63 - 1)]


def _fail(kind: str, message: str) -> PydanticCustomError:
    # The message is passed as context so that braces in it are not taken as placeholders.
    return PydanticCustomError(kind, "{reason}", {"reason": message})


def _visible(char: str) -> bool:
    return unicodedata.category(char)[0] in "LNPS" and char not in BLANK_LOOKALIKES


def _check_name(max_length: int, allow_empty: bool) -> Callable[[str], str]:
    def check(raw: str) -> str:
        text = raw.strip()
        if len(text) > max_length:
            raise _fail(
                "string_too_long", f"must be at most {max_length} characters, got {len(text)}"
            )
        problem = first_forbidden(raw, NAME_FORBIDDEN)
        if problem:
            raise _fail("forbidden_character", problem)
        if not text:
            if allow_empty and not raw:
                return text
            raise _fail("blank_string", "must not be empty or only whitespace")
        if not any(_visible(c) for c in text):
            raise _fail("blank_string", "must contain a visible character")
        return text

    return check


def _check_value(max_length: int) -> Callable[[str], str]:
    def check(raw: str) -> str:
        if len(raw) > max_length:
            raise _fail(
                "string_too_long", f"must be at most {max_length} characters, got {len(raw)}"
            )
        problem = first_forbidden(raw, VALUE_FORBIDDEN)
        if problem:
            raise _fail("forbidden_character", problem)
        return raw

    return check


def name_text(max_length: int, *, allow_empty: bool = False) -> AfterValidator:
    """For ``Annotated[str, name_text(64)]``, a name-like string.

    Surrounding whitespace is stripped; then at most ``max_length`` characters, at least one
    visible character, and no control, format, surrogate, private-use, unassigned or
    line/paragraph-separator characters anywhere (checked before stripping, so a trailing newline
    is refused rather than quietly dropped). ``allow_empty`` lets exactly ``""`` through.
    """
    return AfterValidator(_check_name(max_length, allow_empty))


def value_text(max_length: int) -> AfterValidator:
    """For ``Annotated[str, value_text(4096)]``, a free-form value kept as sent.

    At most ``max_length`` characters, spaces allowed, but no control or invisible format
    characters (bidirectional overrides, zero-width ones), lone surrogates or line/paragraph
    separators (``engine.text``)."""
    return AfterValidator(_check_value(max_length))


def field_path(loc: Sequence[int | str]) -> str:
    """``("obLinks", 1, "username")`` -> ``obLinks[1].username``."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path or "(request)"


def _field_names(model: type[BaseModel]) -> dict[str, str]:
    """The keys ``model`` reads from JSON, each mapped to its field name."""
    names = {}
    for name, info in model.model_fields.items():
        key = info.validation_alias if isinstance(info.validation_alias, str) else info.alias
        names[key or name] = name
    return names


def _walk(annotation: Any, value: Any, loc: tuple[int | str, ...], found: dict[str, FieldError]):
    """Find keys in ``value`` that differ only by case from a field of the model(s) in
    ``annotation``, through nested models, lists, dicts, Optional and Annotated."""
    origin = get_origin(annotation)
    args = get_args(annotation)
    if origin is Annotated:
        _walk(args[0], value, loc, found)
    elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
        if isinstance(value, dict):
            _check_keys(annotation, value, loc, found)
    elif origin is Union or origin is types.UnionType:
        for arg in args:
            _walk(arg, value, loc, found)
    elif origin is Literal or not args:
        return
    elif isinstance(origin, type) and issubclass(origin, Mapping):
        if isinstance(value, dict) and len(args) == 2:
            for key, item in value.items():
                _walk(args[1], item, (*loc, key), found)
    elif isinstance(origin, type) and issubclass(origin, Iterable) and not issubclass(origin, str):
        if isinstance(value, list):
            variadic = origin is not tuple or (len(args) == 2 and args[1] is Ellipsis)
            for i, item in enumerate(value):
                if variadic:
                    _walk(args[0], item, (*loc, i), found)
                elif i < len(args):
                    _walk(args[i], item, (*loc, i), found)


def _check_keys(
    model: type[BaseModel], data: dict[Any, Any], loc: tuple[int | str, ...], found: dict
) -> None:
    keys = _field_names(model)
    by_lower: dict[str, list[str]] = {}
    for key in keys:
        by_lower.setdefault(key.lower(), []).append(key)
    for key, item in data.items():
        if not isinstance(key, str):
            continue
        if key in keys:
            _walk(model.model_fields[keys[key]].annotation, item, (*loc, key), found)
            continue
        meant = by_lower.get(key.lower())
        if meant:
            path = field_path((*loc, key))
            found.setdefault(
                path,
                FieldError(path, f"unknown field, did you mean {' or '.join(meant)}?", item),
            )


def case_variants(model: type[BaseModel], data: Any) -> list[FieldError]:
    """Keys in ``data`` (decoded JSON) that differ from one of ``model``'s fields only by case.

    Unknown fields are otherwise ignored (OCP's own samples carry undocumented ones), but
    ``workmode`` for ``workMode`` is a typo that would silently fall back to a default.
    """
    found: dict[str, FieldError] = {}
    _walk(model, data, (), found)
    return list(found.values())


def parse(model: type[M], data: Any) -> M:
    """Validate ``data`` (decoded JSON) against ``model``; RequestInvalid names every bad field."""
    if not isinstance(data, dict):
        raise RequestInvalid(
            [FieldError("(request)", f"must be a JSON object, not {type(data).__name__}")]
        )
    errors = case_variants(model, data)
    try:
        parsed = model.model_validate(data)
    except ValidationError as exc:
        reported = {e.field for e in errors}
        for err in exc.errors(include_url=False):
            path = field_path(err["loc"])
            if path in reported and err["type"] == "extra_forbidden":
                continue  # already reported with a better message
            errors.append(FieldError(path, err["msg"], err.get("input")))
        raise RequestInvalid(errors) from None
    if errors:
        raise RequestInvalid(errors)
    return parsed
