"""The reference of SPEC §12: a minimal Starlette JSON POST endpoint under uvicorn.

It reads the JSON body of ``POST /v1/activate`` and answers a small JSON object, nothing else:
no validation, no storage, no signature. It runs under uvicorn with volact's shared settings
(:func:`volact.web.runner.uvicorn_config`) and the fast choices: one process, uvloop, uvicorn's
own httptools protocol, access log off, no server header, lifespan off, on a socket bound the
way the host binds its own. The host serves on its own HTTP edge (:mod:`volact.web.http1`),
which is part of what is measured. Run::

    .venv/bin/python benchmarks/reference_app.py [--port 0]

It prints ``reference app listening on http://127.0.0.1:PORT`` once it accepts requests.
"""

from __future__ import annotations

import argparse
import asyncio

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from volact.web.runner import bind_socket, listening_url, uvicorn_config


async def activate(request: Request) -> Response:
    body = await request.json()
    return JSONResponse({"ok": True, "cmid": body.get("cmid")})


def create_app() -> Starlette:
    return Starlette(routes=[Route("/v1/activate", activate, methods=["POST"])])


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, url: str) -> None:
        super().__init__(config)
        self.url = url

    async def startup(self, sockets: list[object] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started:
            print(f"reference app listening on {self.url}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bind", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    config = uvicorn_config(
        create_app(),
        graceful_timeout=30,
        loop="uvloop",
        http="httptools",
        ws="none",
        proxy_headers=False,
    )
    sock = bind_socket(args.bind, args.port)
    server = _Server(config, listening_url(sock))
    try:
        with asyncio.Runner(loop_factory=config.get_loop_factory()) as runner:
            runner.run(server.serve(sockets=[sock]))
    finally:
        sock.close()


if __name__ == "__main__":
    main()
