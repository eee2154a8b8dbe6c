"""Small named facts an instance keeps between runs (positions, caches): one row per key."""

from __future__ import annotations

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from app.store.models import InstanceSetting


def read_setting(sessions: sessionmaker[Session], key: str) -> str | None:
    with sessions() as s:
        row = s.get(InstanceSetting, key)
        return row.value if row is not None else None


def write_setting(sessions: sessionmaker[Session], key: str, value: str | None) -> None:
    """Store ``value`` under ``key`` (``None`` forgets it); the last writer wins."""
    with sessions() as s, s.begin():
        if value is None:
            s.execute(delete(InstanceSetting).where(InstanceSetting.key == key))
            return
        row = s.get(InstanceSetting, key)
        if row is not None:
            row.value = value
            return
    try:
        with sessions() as s, s.begin():
            s.add(InstanceSetting(key=key, value=value))
    except IntegrityError:
        # Another process inserted the key meanwhile: update it instead.
        with sessions() as s, s.begin():
            row = s.get(InstanceSetting, key)
            if row is not None:
                row.value = value
