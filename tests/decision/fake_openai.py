"""A real local HTTP server speaking the OpenAI chat-completions protocol, for tests.

    with FakeOpenAI() as fake:
        settings = settings.replace(openai_base_url=fake.base_url, openai_api_key="sk-test")
        fake.set(mode="decision", decision={"action": "buy", ...}, delay_s=0)
        ...
        assert fake.request_count == 1 and fake.requests[0]["body"]["model"] == "gpt-4o-mini"

Modes: "decision" (a valid envelope with `decision`), "content" (the raw `content` string as the
message content), "body" (the raw `body` text as the whole response), "http_error" (`status`,
body `body`), "echo_auth" (401 whose body repeats the Authorization header it received).
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DEFAULT_DECISION = {
    "action": "hold",
    "symbol": "600519.SH",
    "confidence": 0.66,
    "quantity_shares": 0,
    "reasoning": "signals mixed, wait",
}


class FakeOpenAI:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.requests: list[dict[str, Any]] = []
        self.mode = "decision"
        self.decision: dict[str, Any] = dict(DEFAULT_DECISION)
        self.content = ""
        self.body = ""
        self.status = 500
        self.delay_s = 0.0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---- control ----------------------------------------------------------------------------

    def set(self, mode: str | None = None, *, decision: dict | None = None, content: str | None = None,
            body: str | None = None, status: int | None = None, delay_s: float | None = None) -> None:
        with self._lock:
            if mode is not None:
                self.mode = mode
            if decision is not None:
                self.decision = dict(decision)
            if content is not None:
                self.content = content
            if body is not None:
                self.body = body
            if status is not None:
                self.status = status
            if delay_s is not None:
                self.delay_s = delay_s

    @property
    def request_count(self) -> int:
        with self._lock:
            return len(self.requests)

    @property
    def base_url(self) -> str:
        assert self._server is not None, "start() first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self) -> FakeOpenAI:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # GET /models: what the runtime's preflight probes
                if fake.mode == "http_error":
                    payload, status = fake.body.encode() or b"{}", fake.status
                else:
                    payload, status = json.dumps({"object": "list", "data": [{"id": "gpt-4o-mini", "object": "model"}]}).encode(), 200
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                fake._handle(self, raw)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name="fake-openai", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # ---- serving ----------------------------------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler, raw: bytes) -> None:
        try:
            body = json.loads(raw.decode("utf-8"))
        except ValueError:
            body = None
        with self._lock:
            self.requests.append({"path": handler.path, "headers": dict(handler.headers.items()), "body": body})
            mode, decision, content, text = self.mode, dict(self.decision), self.content, self.body
            status, delay = self.status, self.delay_s
        if delay and self._stop.wait(delay):
            return
        if mode == "decision":
            status, text = 200, self._completion(json.dumps({"decisions": [decision]}, ensure_ascii=False))
        elif mode == "content":
            status, text = 200, self._completion(content)
        elif mode == "body":
            status = 200
        elif mode == "echo_auth":
            status, text = 401, json.dumps({"error": {"message": f"bad key: {handler.headers.get('Authorization')}"}})
        payload = text.encode("utf-8")
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(payload)))
            handler.end_headers()
            handler.wfile.write(payload)
        except OSError:  # the client gave up (timeout test)
            pass

    def _completion(self, content: str) -> str:
        return json.dumps(
            {
                "id": "chatcmpl-fake",
                "object": "chat.completion",
                "model": "fake",
                "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}],
            },
            ensure_ascii=False,
        )
