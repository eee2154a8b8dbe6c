"""The bridge is assembled into the runtime only when configured, with its routes, workers and
tick."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.engine import make_url

from app.assembly import build_runtime
from app.matrix.appservice import purge_matrix_transactions
from app.store.engine import make_engine
from app.store.migrate import upgrade
from app.store.models_matrix import MatrixTransaction
from tests.conftest import local_settings

MATRIX = dict(
    matrix_homeserver_url="http://127.0.0.1:9",
    matrix_server_name="hs.example",
    matrix_as_token="as-token-0123456789",
    matrix_hs_token="hs-token-0123456789",
)


def runtime_for(tmp_path: Path, **settings: object):
    config = local_settings(**settings)
    engine = make_engine(config, url=make_url(f"sqlite:///{tmp_path}/db.sqlite"))
    upgrade(engine)
    return build_runtime(config, engine=engine)


def test_off_without_settings(tmp_path: Path) -> None:
    runtime = runtime_for(tmp_path)
    assert runtime.matrix is None
    assert runtime.bridge is None and runtime.services.matrix_links is None
    runtime.close()


def test_attached_with_settings(tmp_path: Path) -> None:
    runtime = runtime_for(tmp_path, **MATRIX)
    adapter, bridge = runtime.matrix, runtime.bridge
    assert adapter is not None and runtime.services.matrix_links is adapter.links
    assert bridge is not None
    paths = {getattr(r, "path", "") for r in runtime.routes}
    assert {
        "/_matrix/app/v1/transactions/{txn_id}",
        "/transactions/{txn_id}",
        "/_matrix/app/v1/ping",
        "/avatars/matrix/{server}/{media_id}",
    } <= paths
    assert adapter in runtime.workers
    assert bridge in runtime.workers
    # Socket Mode first (the seed connects, then syncs), then the workspace bridge's sync.
    assert bridge.workspace_bridge is not None
    assert adapter.on_login[1] == bridge.workspace_bridge.on_login
    assert len(adapter.on_login) == 2
    assert runtime.socket_mode is not None
    hooks = runtime.socket_mode.events.event_hooks
    assert bridge.workspace_bridge.on_slack_event in hooks
    with runtime.sessions() as s, s.begin():
        s.add(
            MatrixTransaction(
                txn_id="old", events=1, processed_at=datetime.now(UTC) - timedelta(days=8)
            )
        )
        s.add(MatrixTransaction(txn_id="new", events=1))
    assert purge_matrix_transactions(runtime.sessions) == 1
    with runtime.sessions() as s:
        assert s.execute(select(MatrixTransaction.txn_id)).scalars().all() == ["new"]
    runtime.close()
