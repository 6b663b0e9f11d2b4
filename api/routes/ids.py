"""Path ids: whole numbers that fit a 64-bit column, as OCP's Long path parameters."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path
from starlette.convertors import Convertor, register_url_convertor

MAX_ID = 2**63 - 1
Id = Annotated[int, Path(ge=1, le=MAX_ID)]


class PlainId(Convertor[int]):
    """``{x:plain_id}`` in a lean route's path: only ids that are certainly valid (1 to 18
    digits, no sign, no leading zero, so below MAX_ID). Any other id goes on to the FastAPI
    route for the same path, whose validation names the field."""

    regex = "[1-9][0-9]{0,17}"

    def convert(self, value: str) -> int:
        return int(value)

    def to_string(self, value: int) -> str:
        return str(value)


register_url_convertor("plain_id", PlainId())
