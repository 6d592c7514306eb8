"""The baseline for bench/ingest.py: a bare Starlette endpoint that only answers 202, on the same uvicorn
settings as `analytics serve` (uvloop, httptools, no access log)."""

from __future__ import annotations

import argparse

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


async def event(request: Request) -> Response:
    return Response(status_code=202)


app = Starlette(routes=[Route("/api/event", event, methods=["POST", "OPTIONS"])])

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8001)
    port = parser.parse_args().port
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False, server_header=False)
