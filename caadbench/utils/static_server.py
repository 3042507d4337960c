"""A quiet, threaded static HTTP server for a directory — to try ``--data http://…`` on one machine, in tests and
in ``benchmarks/data_throughput.py``. For serving a set to other machines use any web server (see
``docs/data.md``); this one binds to ``127.0.0.1`` by default and has no access control.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class's name
        pass


@contextlib.contextmanager
def serve_directory(root: str | Path, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve ``root`` over HTTP in a background thread while the context is open.

    Args:
        root: the directory to serve.
        host: interface to bind.
        port: port to bind (0: any free port).

    Yields:
        The base URL, ``http://<host>:<port>/``.
    """
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="caadbench-static-server", daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
