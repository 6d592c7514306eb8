"""Running the app under uvicorn: logging without addresses, graceful shutdown on SIGTERM/SIGINT, exit code 0.

A stop answers every request that reaches the server. uvicorn's own shutdown closes each kept-alive connection
that is between requests at once; a client (a proxy's pool, a browser, a script) that sent its next request at
that moment, or whose request the server had not read yet, got no answer but a reset. Here the stop instead
stops accepting connections, then lets the open ones finish: every response from the signal on says
`Connection: close`, so each connection ends after its next answer, and idle ones end by uvicorn's keep-alive
timeout, exactly when they would have without a stop. Only then does uvicorn's shutdown run (nothing is left
for it to cut off) and the app's, which commits everything queued.
"""

from __future__ import annotations

import asyncio
import contextlib
import faulthandler
import logging
import logging.config
import signal
import socket
import time
from collections.abc import Generator, Sequence
from types import FrameType
from typing import Any

import uvicorn
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from analytics import __version__
from analytics.app import AccessLog, create_app
from analytics.config import Config
from analytics.privacy import Network
from analytics.protocol import bounded, connection_limit

log = logging.getLogger("analytics.server")

HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def configure_logging(level: str) -> None:
    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
            "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "plain"}},
            "root": {"handlers": ["stderr"], "level": level.upper()},
            "loggers": {
                # uvicorn's access log prints the client address: it stays off, whatever the level.
                "uvicorn.access": {"level": "CRITICAL", "propagate": False, "handlers": []},
                "uvicorn": {"level": level.upper()},
            },
        }
    )


class _Server(uvicorn.Server):
    """uvicorn re-raises the signal after a graceful shutdown, which ends the process with 128+n; a clean
    stop requested by the operator should exit 0, so the signal is only recorded."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.stopping = False
        """Set once the listening sockets are closed: from then on every response says `Connection: close`."""
        self._loop: asyncio.AbstractEventLoop | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().startup(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        if self._loop is not None:
            # At once, not at uvicorn's next tick (up to 0.1 s later): the listeners close before the first
            # `Connection: close`, so a client that reconnects after one is refused (nothing sent), never
            # accepted into a backlog that the closing listener would then reset under its request.
            self._loop.call_soon_threadsafe(self._stop_listening)

    def _stop_listening(self) -> None:
        for server in getattr(self, "servers", []):  # uvicorn makes the list once the app has started
            server.close()
        self.stopping = True

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        original = {sig: signal.signal(sig, self.handle_exit) for sig in HANDLED_SIGNALS}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self._stop_listening()  # done already after a signal; uvicorn's shutdown starts the same way
        for sock in sockets or []:
            sock.close()
        # The open connections end by themselves (see the module's docstring); one that neither sends a request
        # nor is closed by the keep-alive timer (a connection that never sent one) is closed by uvicorn below.
        deadline = time.monotonic() + self.config.timeout_keep_alive + 1
        if self.server_state.connections:
            log.info("stopping: answering the requests of %d open connections", len(self.server_state.connections))
        # Polled, as uvicorn does: its set of connections signals nothing when one closes.
        while self.server_state.connections and not self.force_exit and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        await super().shutdown(sockets)


class CloseWhenStopping:
    """Once a stop has begun, every response carries `Connection: close`: the client learns with its answer
    that the connection ends, instead of finding it closed under its next request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.server: _Server | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.server is None or not self.server.stopping:
            await self.app(scope, receive, send)  # the common case: no wrapper around every answer
            return

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers: list[Any] = [*message.get("headers", []), (b"connection", b"close")]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, sending)


def serve(config: Config, applied: Sequence[str] = ()) -> None:
    """Runs the server until a signal; `applied`: the migrations `analytics serve` applied just before, logged
    here once the configuration has proved sound (a start that fails says one line, nothing else)."""
    configure_logging(config.log.level)
    # A fatal signal (SIGBUS when the database's -shm file is truncated under the server, see the README's
    # Durability) would otherwise end the process without a word; this writes the Python stack to stderr.
    faulthandler.enable(all_threads=False)
    app = create_app(config)
    log.info("analytics %s, database %s", __version__, config.database.url)
    # Says that DEBUG is on, since nothing else may: aiosqlite's lines at that level are dropped (the store's set-up,
    # analytics/store/sqlite_connect.py), as they print each statement with its parameters, salts and events.
    log.debug("logging at DEBUG, without aiosqlite's lines (statements with their parameters)")
    for migration in applied:
        log.info("applied migration %s", migration)
    connections = connection_limit(config.server.max_connections)
    log.info("accepting up to %d connections at once (server.max_connections)", connections)
    asgi = CloseWhenStopping(AccessLog(app) if config.server.access_log else app)
    server = _Server(
        uvicorn.Config(
            asgi,
            host=config.server.host,
            port=config.server.port,
            log_config=None,
            access_log=False,
            # The app reads X-Forwarded-For itself, from the configured proxies only.
            proxy_headers=False,
            server_header=False,
            lifespan="on",
            timeout_graceful_shutdown=10,
            http=bounded(
                config.server.max_header_bytes,
                config.server.header_timeout_seconds,
                config.server.max_connections_per_address,
                tuple(Network.parse(n) for n in config.server.trusted_proxies),
                connections,
            ),
        )
    )
    asgi.server = server
    server.run()
    if not server.started:
        raise SystemExit(1)
