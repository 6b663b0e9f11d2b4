"""Path ids: whole numbers that fit a 64-bit column, as OCP's Long path parameters."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path

MAX_ID = 2**63 - 1
Id = Annotated[int, Path(ge=1, le=MAX_ID)]
