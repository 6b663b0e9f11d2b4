"""Which ids a row of ours can have: what the API accepts beyond that is simply not found."""

from __future__ import annotations

ROW_ID_MAX = 2**31 - 1
"""The largest id a table of ours can hold everywhere (PostgreSQL's INTEGER). OCP's ids are
Longs, so the API takes up to 2**63 - 1: anything above this is simply not found, rather than an
error from the database."""


def is_row_id(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= ROW_ID_MAX
