"""A real HTTP receiver on the loopback, standing where Slack's webhook would.

It records every JSON body posted to it, and answers with the given status codes first
(then 200 "ok", as Slack does), so tests can see retries and refusals.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Receiver:
    def __init__(self, statuses: list[int] | None = None) -> None:
        self.bodies: list[dict] = []
        self.times: list[float] = []  # when each accepted body arrived (epoch seconds)
        self.statuses = list(statuses or [])
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length))
                with receiver._lock:
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                    if status == 200:
                        receiver.bodies.append(body)
                        receiver.times.append(time.time())
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b"ok" if status == 200 else b"error")

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_port}/services/T000/B000/secret"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def arrival(self, alert_id: str, state: str) -> float | None:
        """When the change arrived (epoch seconds), or None."""
        with self._lock:
            for body, at in zip(self.bodies, self.times, strict=True):
                if (body["alert"]["alert_id"], body["alert"]["state"]) == (alert_id, state):
                    return at
        return None

    def received(self) -> list[tuple[str, str]]:
        """(alert_id, state) of every accepted post, in order."""
        with self._lock:
            return [(b["alert"]["alert_id"], b["alert"]["state"]) for b in self.bodies]
