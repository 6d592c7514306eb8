"""Running the app under uvicorn: logging without addresses, graceful shutdown on SIGTERM/SIGINT, exit code 0."""

from __future__ import annotations

import contextlib
import logging
import logging.config
import signal
from collections.abc import Generator

import uvicorn

from analytics.app import AccessLog, create_app
from analytics.config import Config
from analytics.protocol import bounded

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

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        original = {sig: signal.signal(sig, self.handle_exit) for sig in HANDLED_SIGNALS}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)


def serve(config: Config) -> None:
    configure_logging(config.log.level)
    app = create_app(config)
    asgi = AccessLog(app) if config.server.access_log else app
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
            http=bounded(config.server.max_header_bytes),
        )
    )
    server.run()
    if not server.started:
        raise SystemExit(1)
