"""The pages people look at, served by the bridge from `static/` (no build step):

- `GET /ui/embed.js`, `/ui/embed.css`  the embeddable live status view (one `<script>` tag with a
  `customer:read` token, on any origin);
- `GET /ui/fleet` (+ `fleet.js`, `fleet.css`)  the team's fleet page (operator or write token).

The files hold no data and need no token; every byte of data comes from the status API with the
caller's bearer token. They are read once at start, served gzip-compressed to clients that accept
it, with an ETag and a short cache lifetime so a new bridge version is picked up within minutes.

`install()` also lets pages on other origins read the status API: GET only, any origin, no
cookies (the bearer token is the credential, so no origin gains anything it does not hold).
"""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import RedirectResponse

STATIC = Path(__file__).parent / "static"
TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
}
FILES = {"embed.js", "embed.css", "fleet.js", "fleet.css"}
CACHE = "public, max-age=300"


@dataclass(frozen=True)
class Asset:
    body: bytes
    gzipped: bytes
    media_type: str
    etag: str

    @classmethod
    def load(cls, path: Path) -> Asset:
        body = path.read_bytes()
        return cls(
            body=body,
            gzipped=gzip.compress(body, 9, mtime=0),
            media_type=TYPES[path.suffix],
            etag='"' + hashlib.sha256(body).hexdigest()[:16] + '"',
        )

    def response(self, request: Request) -> Response:
        headers = {"ETag": self.etag, "Cache-Control": CACHE, "Vary": "Accept-Encoding"}
        if request.headers.get("if-none-match") == self.etag:
            return Response(status_code=304, headers=headers)
        if "gzip" in request.headers.get("accept-encoding", ""):
            headers["Content-Encoding"] = "gzip"
            return Response(self.gzipped, media_type=self.media_type, headers=headers)
        return Response(self.body, media_type=self.media_type, headers=headers)


def router() -> APIRouter:
    assets = {name: Asset.load(STATIC / name) for name in FILES}
    page = Asset.load(STATIC / "fleet.html")
    ui = APIRouter(include_in_schema=False)

    @ui.get("/ui/{name}")
    async def asset(name: str, request: Request) -> Response:
        if name == "fleet":
            return page.response(request)
        if name not in assets:
            return Response("no such file", status_code=404, media_type="text/plain")
        return assets[name].response(request)

    @ui.get("/ui/")
    async def index() -> RedirectResponse:
        return RedirectResponse("/ui/fleet")

    return ui


def install(app: FastAPI) -> None:
    """Serve the pages, and let other origins read the status API (module docstring)."""
    app.include_router(router())
    app.add_middleware(
        CORSMiddleware,
        allow_origins=["*"],
        allow_methods=["GET"],
        allow_headers=["Authorization", "Last-Event-ID"],
        allow_credentials=False,
        max_age=600,
    )
