"""A scriptable OpenAI-compatible chat server on 127.0.0.1, standard library only.

Tests use it to exercise the real LLM client over real HTTP:

    server = OpenAICompatServer().start()
    server.add_rule(Reply(status=429, retry_after=1), times=1)      # the next request gets a 429
    server.add_rule(Reply(content="好的"), match="中文")             # requests whose text contains 中文
    server.responder = lambda body: Reply(content=..., reasoning=...)  # everything else
    ...
    server.count  # requests the server saw (cache tests check this on the server side)
    server.stop()

Behaviours a ``Reply`` can script: latency, reasoning as ``reasoning_content`` or as ``<think>`` tags in the
content, an HTTP error status with ``Retry-After``, a hang longer than the client timeout, a dropped
connection, a truncated answer (``finish_reason="length"``), and any content (wrong language, refusals,
malformed JSON for judges). ``fail_rate`` adds random transient failures (429 / 500 / dropped connection).

Run it on its own (the benchmark does): ``python -m tests.servers.openai_compat --port 8011 --latency 0.2``.
"""
from __future__ import annotations

import argparse
import json
import random
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable


@dataclass
class Reply:
    content: str = "OK."
    reasoning: str | None = None
    # "field": message.reasoning_content (vLLM < 0.11, DeepSeek); "reasoning": message.reasoning (newer vLLM);
    # "think": <think>..</think> at the start of content (llama.cpp, raw open models)
    reasoning_style: str = "field"
    latency: float | None = None  # seconds before answering (None: the server's default latency)
    status: int = 200  # non-200: an error body with this status
    retry_after: float | None = None  # Retry-After header (seconds) on error replies
    hang: float = 0.0  # sleep this long before answering (set it past the client's timeout)
    drop: bool = False  # close the connection without answering
    truncated: bool = False  # finish_reason "length"
    raw_body: str | None = None  # send exactly this body (e.g. broken JSON) with the status
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


@dataclass
class Rule:
    reply: Reply | Callable[[dict], Reply]
    match: str | Callable[[dict], bool] | None = None  # substring of any message's text, or a predicate
    times: int | None = None  # how many requests it applies to (None: all)

    def matches(self, body: dict) -> bool:
        if self.times is not None and self.times <= 0:
            return False
        if self.match is None:
            return True
        if callable(self.match):
            return bool(self.match(body))
        return any(self.match in str(m.get("content", "")) for m in body.get("messages", []))


def default_responder(body: dict) -> Reply:
    """A refusal with reasoning in reasoning_content, in the language of the last user turn, quoting it
    (so answers to different prompts are not near-duplicates of each other)."""
    text = str(body.get("messages", [{}])[-1].get("content", ""))[:120]
    if any("\u4e00" <= ch <= "\u9fff" for ch in text):
        return Reply(content=f"抱歉，我不能帮助你完成“{text}”。如果你关心相关的安全问题，我可以介绍一些一般性的安全知识。",
                     reasoning=f"用户问的是“{text}”。先对照相关政策，再给出安全的回答。")
    return Reply(content=f"I can't help with that ({text}). I can share general safety information instead.",
                 reasoning=f"The user asks: {text!r}. First consider the relevant policy, then answer safely.")


class OpenAICompatServer:
    """The server plus its script and its counters; ``start()`` serves from a daemon thread."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, latency: float = 0.0,
                 fail_rate: float = 0.0, seed: int = 0, model: str = "test-model"):
        self.latency = latency
        self.fail_rate = fail_rate
        self.model = model
        self.responder: Callable[[dict], Reply] = default_responder
        self._rules: list[Rule] = []
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self._stopping = threading.Event()
        self.requests: list[dict] = []  # bodies of /v1/chat/completions requests, in arrival order
        self.arrivals: list[float] = []  # time.monotonic() of each of those requests
        self.headers: list[dict[str, str]] = []
        self.transient_failures = 0
        self._httpd = _Server((host, port), _Handler)
        self._httpd.app = self
        self._thread: threading.Thread | None = None

    # -- scripting ------------------------------------------------------------------------------
    def add_rule(self, reply: Reply | Callable[[dict], Reply], *, match=None, times: int | None = None) -> Rule:
        rule = Rule(reply=reply, match=match, times=times)
        with self._lock:
            self._rules.append(rule)
        return rule

    def reset(self) -> None:
        with self._lock:
            self._rules.clear()
            self.requests.clear()
            self.arrivals.clear()
            self.headers.clear()
            self.transient_failures = 0
        self.responder = default_responder
        self.latency = 0.0
        self.fail_rate = 0.0

    @property
    def count(self) -> int:
        with self._lock:
            return len(self.requests)

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> "OpenAICompatServer":
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True, name="openai-compat-server")
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes hanging handlers
        self._httpd.shutdown()
        self._httpd.server_close()

    def serve_forever(self) -> None:
        self._httpd.serve_forever()

    # -- request handling (called from handler threads) -----------------------------------------
    def _choose(self, body: dict) -> Reply:
        with self._lock:
            self.requests.append(body)
            self.arrivals.append(time.monotonic())
            if self.fail_rate and self._rng.random() < self.fail_rate:
                self.transient_failures += 1
                kind = self._rng.choice(("429", "500", "drop"))
                return Reply(status=429, retry_after=0) if kind == "429" else (
                    Reply(status=500) if kind == "500" else Reply(drop=True))
            for rule in self._rules:
                if rule.matches(body):
                    if rule.times is not None:
                        rule.times -= 1
                    reply = rule.reply
                    break
            else:
                reply = self.responder
        return reply(body) if callable(reply) else reply


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 512  # the default backlog of 5 drops connections at 64 concurrent clients
    app: OpenAICompatServer

    def handle_error(self, request, client_address) -> None:
        import sys

        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return  # a client that went away (killed, timed out) is expected here, not a server fault
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    disable_nagle_algorithm = True  # without it keep-alive requests crawl (~23 req/s)
    server: _Server

    def log_message(self, *args: Any) -> None:  # quiet
        pass

    def _send_json(self, status: int, payload: Any, extra_headers: dict[str, str] | None = None,
                   raw: str | None = None) -> None:
        data = (raw if raw is not None else json.dumps(payload, ensure_ascii=False)).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (extra_headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path.rstrip("/") == "/_stats":  # for a server running in another process (the benchmark)
            app = self.server.app
            self._send_json(200, {"requests": app.count, "transient_failures": app.transient_failures})
        elif self.path.rstrip("/") == "/v1/models":
            app = self.server.app
            self._send_json(200, {"object": "list", "data": [{"id": app.model, "object": "model", "owned_by": "test"}]})
        else:
            self._send_json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})

    def do_POST(self) -> None:
        app = self.server.app
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if self.path.rstrip("/") != "/v1/chat/completions":
            self._send_json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
            return
        try:
            body = json.loads(raw or b"{}")
        except json.JSONDecodeError:
            self._send_json(400, {"error": {"message": "body is not JSON", "type": "invalid_request_error"}})
            return
        with app._lock:
            app.headers.append({k.lower(): v for k, v in self.headers.items()})
        reply = app._choose(body)
        delay = app.latency if reply.latency is None else reply.latency
        if reply.hang:
            delay += reply.hang
        if delay and app._stopping.wait(delay):
            return
        if reply.drop:
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.close_connection = True
            return
        try:
            if reply.status != 200:
                headers = {"Retry-After": f"{reply.retry_after:g}"} if reply.retry_after is not None else {}
                kind = "rate_limit_exceeded" if reply.status == 429 else "server_error"
                self._send_json(reply.status, {"error": {"message": f"scripted {reply.status}", "type": kind}},
                                headers, raw=reply.raw_body)
                return
            self._send_json(200, _completion(body, reply, app.model), raw=reply.raw_body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True


def _completion(body: dict, reply: Reply, model: str) -> dict:
    message: dict[str, Any] = {"role": "assistant", "content": reply.content}
    if reply.reasoning is not None:
        if reply.reasoning_style == "think":
            message["content"] = f"<think>\n{reply.reasoning}\n</think>\n\n{reply.content}"
        elif reply.reasoning_style == "reasoning":
            message["reasoning"] = reply.reasoning
        else:
            message["reasoning_content"] = reply.reasoning
    prompt_chars = sum(len(str(m.get("content", ""))) for m in body.get("messages", []))
    prompt_tokens = reply.prompt_tokens if reply.prompt_tokens is not None else max(1, prompt_chars // 4)
    completion_tokens = reply.completion_tokens if reply.completion_tokens is not None else max(
        1, (len(message["content"] or "") + len(reply.reasoning or "")) // 4)
    return {
        "id": f"chatcmpl-{random.getrandbits(48):x}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model") or model,
        "choices": [{"index": 0, "message": message, "finish_reason": "length" if reply.truncated else "stop"}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens},
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: a free port (printed on start)")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per request")
    parser.add_argument("--fail-rate", type=float, default=0.0, help="share of requests failing transiently")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--reasoning-style", choices=("field", "reasoning", "think"), default="field")
    args = parser.parse_args(argv)
    server = OpenAICompatServer(args.host, args.port, latency=args.latency, fail_rate=args.fail_rate, seed=args.seed)

    def responder(body: dict) -> Reply:
        reply = default_responder(body)
        reply.reasoning_style = args.reasoning_style
        return reply

    server.responder = responder
    print(f"serving {server.base_url}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
