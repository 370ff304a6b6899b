"""A local HTTP server on 127.0.0.1 that stands in for the hosts of release files, and a release it serves."""

from __future__ import annotations

import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from colorization.inference.releases import RELEASES, Release
from colorization.inference.zhang import ECCV16Colorizer


class Server:
    """Serves `files` (URL path -> bytes); paths in `truncate` announce the full length but send half."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.truncate: set[str] = set()
        self.requests: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (the http.server API)
                server.requests.append(self.path)
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[: len(body) // 2] if self.path in server.truncate else body)

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def publish(
    server: Server, monkeypatch: pytest.MonkeyPatch, name: str, body: bytes, digest: str | None = None
) -> Release:
    """Serve `body` and list it under `name` in the release table, named and checked like a release (sha256 prefix)."""
    prefix = digest or hashlib.sha256(body).hexdigest()[:8]
    filename = f"{name}-{prefix}.pth"
    server.files[f"/{filename}"] = body
    release = Release(name, server.url(f"/{filename}"), filename, ECCV16Colorizer, "test", len(body), prefix)
    monkeypatch.setitem(RELEASES, name, release)
    return release
