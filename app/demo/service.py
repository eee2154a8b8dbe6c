"""The service as ``syncbot serve`` runs it, but in this process: on a loopback port, in a thread.

Same assembly (:func:`~app.assembly.build_runtime`), same ASGI app with its lifespan (the outbox
worker, Socket Mode), same uvicorn; only where it listens and that it stops when asked differ.
"""

from __future__ import annotations

import socket
import threading
import time

import uvicorn

from app.assembly import build_runtime
from app.runtime import Runtime
from app.serving import loop_name
from app.settings import Settings
from app.store.migrate import upgrade
from app.web import create_app

START_TIMEOUT = 30.0


class LocalService:
    """``syncbot serve`` on ``127.0.0.1:<ephemeral port>`` in a background thread."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings
        self.runtime: Runtime | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def bind(self) -> int:
        """Take the port now (a homeserver's registration needs our URL before we start)."""
        if self._socket is None:
            # Bound here, handed to uvicorn: the port is known before the thread starts.
            self._socket = socket.socket()
            self._socket.bind(("127.0.0.1", 0))
            self.port = self._socket.getsockname()[1]
        return self.port

    def start(self) -> LocalService:
        if self.settings is None:
            raise ValueError("LocalService.start needs settings")
        runtime = build_runtime(self.settings)
        self.runtime = runtime
        upgrade(runtime.engine)
        app = create_app(runtime)
        self.bind()
        config = uvicorn.Config(
            app, log_config=None, access_log=False, lifespan="on", loop=loop_name()
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [self._socket]},
            name="syncbot-service",
            daemon=True,
        )
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the service did not start (see the log above)")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(20)
            self._thread = None
        if self._socket is not None:
            self._socket.close()
            self._socket = None
        if self.runtime is not None:
            self.runtime.close()
            self.runtime = None

    def __enter__(self) -> LocalService:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
