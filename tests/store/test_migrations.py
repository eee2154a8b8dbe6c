from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import URL

from app.store.engine import make_engine
from app.store.migrate import current_revision, downgrade, head_revision, is_at_head, upgrade
from app.store.models import Base
from tests.conftest import local_settings


def test_upgrade_from_empty_to_head_and_back_down(db_url: URL) -> None:
    engine = make_engine(local_settings(), url=db_url)
    assert current_revision(engine) is None
    upgrade(engine)
    assert is_at_head(engine)
    tables = set(inspect(engine).get_table_names())
    assert {"workspaces", "syncs", "sync_endpoints", "message_map", "outbox"} <= tables
    downgrade(engine)
    assert current_revision(engine) is None
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    engine.dispose()


def test_migrated_schema_matches_the_models(engine) -> None:
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_every_foreign_key_column_is_indexed_or_leads_a_key(engine) -> None:
    insp = inspect(engine)
    for table in insp.get_table_names():
        if table == "alembic_version":
            continue
        leading = {tuple(ix["column_names"][:1]) for ix in insp.get_indexes(table)}
        leading |= {tuple(uq["column_names"][:1]) for uq in insp.get_unique_constraints(table)}
        leading.add(tuple(insp.get_pk_constraint(table)["constrained_columns"][:1]))
        for fk in insp.get_foreign_keys(table):
            assert tuple(fk["constrained_columns"][:1]) in leading, (table, fk)


def test_two_concurrent_migrate_processes_end_at_head(db_url: URL, tmp_path: Path) -> None:
    url = db_url.render_as_string(hide_password=False)
    script = (
        "import sys; from app.store.engine import make_engine;"
        "from app.store.migrate import upgrade;"
        "from tests.conftest import local_settings; from sqlalchemy.engine import make_url;"
        "upgrade(make_engine(local_settings(), url=make_url(sys.argv[1])))"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=Path(__file__).parents[2],
        )
        for _ in range(2)
    ]
    results = [p.communicate(timeout=120) for p in procs]
    for proc, (_out, err) in zip(procs, results, strict=True):
        assert proc.returncode == 0, err.decode()[-2000:]
    engine = make_engine(local_settings(), url=db_url)
    assert is_at_head(engine)
    engine.dispose()
