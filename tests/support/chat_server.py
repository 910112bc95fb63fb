"""A real HTTP server on 127.0.0.1 that speaks the OpenAI chat-completions API, for the
tests of dotevals.llm and its benchmark: it counts the requests it receives (with their
time and body) and answers as it is told, request by request: 200, or 429 with a
``Retry-After``, 500, 400, or slowly.

Each answer's text is ``"<model> says <last user message> (#<request number>)"``: a
cached answer is the one first given, a new request gets a new number.

Run it alone (``python chat_server.py --latency 0.05``): it prints its base URL.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

__all__ = ["ChatServer", "Reply", "Request"]


@dataclass
class Reply:
    """One planned answer: its status, headers and delay (an error body for a status
    other than 200)."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class Request:
    time: float  # time.monotonic() when it arrived
    body: dict[str, Any]
    status: int = 200


class ChatServer:
    """The server, in a thread of its own (see the module docstring). ``latency`` is
    added to every answer."""

    def __init__(self, latency: float = 0.0):
        self.latency = latency
        self.requests: list[Request] = []
        self._plan: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        """The base URL an OpenAI client is given."""
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def count(self) -> int:
        """Requests received so far (errors included)."""
        with self._lock:
            return len(self.requests)

    def plan(self, *replies: Reply) -> None:
        """Answer the next requests with ``replies``, in order; then 200 again."""
        with self._lock:
            self._plan.extend(replies)

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self._plan.clear()

    # serving -----------------------------------------------------------------
    async def _chat(self, request: web.Request) -> web.Response:
        body = await request.json()
        with self._lock:
            number = len(self.requests) + 1
            reply = self._plan.popleft() if self._plan else Reply()
            self.requests.append(Request(time.monotonic(), body, reply.status))
        if self.latency or reply.delay:
            await asyncio.sleep(self.latency + reply.delay)
        if reply.status != 200:
            error = {"error": {"message": f"planned {reply.status}", "type": "test", "code": None}}
            return web.json_response(error, status=reply.status, headers=reply.headers)
        return web.json_response(_completion(body, number), headers=reply.headers)

    def start(self) -> ChatServer:
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()

        async def serve() -> None:
            app = web.Application()
            app.router.add_post("/v1/chat/completions", self._chat)
            self._runner = web.AppRunner(app, access_log=None)
            await self._runner.setup()
            site = web.TCPSite(self._runner, "127.0.0.1", 0, backlog=1024)
            await site.start()
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            ready.set()

        def run() -> None:
            assert self._loop is not None
            asyncio.set_event_loop(self._loop)
            self._loop.run_until_complete(serve())
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="chat-server", daemon=True)
        self._thread.start()
        if not ready.wait(30):
            raise RuntimeError("the chat server did not start")
        return self

    def stop(self) -> None:
        loop, runner = self._loop, self._runner
        if loop is None:
            return
        if runner is not None:
            asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(30)
        loop.close()
        self._loop = None

    def __enter__(self) -> ChatServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _completion(body: dict[str, Any], number: int) -> dict[str, Any]:
    messages = body.get("messages") or [{}]
    users = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
    prompt = (users or messages)[-1].get("content", "")
    text = f"{body.get('model')} says {prompt} (#{number})"
    prompt_tokens = max(1, len(json.dumps(messages)) // 4)
    completion_tokens = max(1, len(text) // 4)
    return {
        "id": f"chatcmpl-{number}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model"),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--latency", type=float, default=0.0)
    args = parser.parse_args()
    server = ChatServer(args.latency).start()
    print(server.url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()
