"""Fixtures shared by the test modules. No test may open a URL anywhere but 127.0.0.1, and the
loader's tests get a clean search path, tiny MNIST files and local HTTP mirrors."""

import http.server
import socket
import threading
import urllib.parse
import urllib.request

import pytest

import nn_helpers as nn
from mnist_fakes import TinyMNIST


@pytest.fixture(autouse=True)
def local_network_only(monkeypatch):
    """Fail any test that would open a URL anywhere but 127.0.0.1."""
    real_urlopen = urllib.request.urlopen

    def guarded(url, *args, **kwargs):
        host = urllib.parse.urlsplit(url if isinstance(url, str) else url.full_url).hostname
        if host != "127.0.0.1":
            raise AssertionError(f"test tried to open {url}; only 127.0.0.1 is allowed")
        return real_urlopen(url, *args, **kwargs)

    monkeypatch.setattr(urllib.request, "urlopen", guarded)


@pytest.fixture
def env(monkeypatch, tmp_path):
    """A clean search path: no $MNIST_DATA_DIR, the cache inside tmp_path."""
    monkeypatch.delenv(nn.DATA_ENV_VAR, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    return tmp_path


@pytest.fixture
def tiny(monkeypatch, env):
    return TinyMNIST(monkeypatch)


@pytest.fixture
def mirror():
    """Factory: ``mirror(routes)`` serves ``{file name: bytes}`` over HTTP on 127.0.0.1 (404 for
    anything else) and returns ``(base_url, requested_paths)``."""
    servers = []

    def start(routes):
        requested = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                requested.append(self.path)
                body = routes.get(self.path.rsplit("/", 1)[-1])
                if body is None:
                    self.send_error(404, "Not Found")
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/mnist/", requested

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def closed_port_url():
    """A URL on 127.0.0.1 where nothing listens: connecting is refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/mnist/"
