"""Reading what a DML statement did, typed."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import CursorResult, Result


def affected(result: Result[Any]) -> int:
    """How many rows an UPDATE or DELETE changed.

    ``Session.execute`` is typed as returning :class:`Result`; DML returns its subclass
    :class:`CursorResult`, which is where ``rowcount`` lives.
    """
    return int(cast(CursorResult[Any], result).rowcount or 0)
