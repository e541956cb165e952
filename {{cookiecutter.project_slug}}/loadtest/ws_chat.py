"""WebSocket load: a conversation on /ws/chat per user, one reply streamed per task."""

from __future__ import annotations

import json
import time
from typing import Any

import websocket
from locust import User, between, task
from workload import HEADERS, MAX_TOKENS, next_prompt

TURNS = 10  # replies per conversation: the context grows with each turn


class ChatUser(User):
    wait_time = between(0.05, 0.2)
    weight = 1  # against the HTTP user's 1: half the users hold a WebSocket

    def on_start(self) -> None:
        host = self.host or "http://127.0.0.1:8000"
        self.url = host.replace("http", "ws", 1).rstrip("/") + "/ws/chat"
        self.socket = websocket.create_connection(self.url, header=HEADERS, timeout=30)
        self.turns = 0

    def on_stop(self) -> None:
        self.hang_up()

    def hang_up(self) -> None:
        """Send the close frame and shut the socket, without waiting for the server's reply.

        While websocket-client's close() waits for that reply it swallows every exception,
        the one locust raises to stop a user among them: the user would then run on, and
        locust would wait for it forever."""
        self.socket.close(timeout=0)

    @task
    def reply(self) -> None:
        if self.turns == TURNS:  # a new conversation
            self.hang_up()
            self.socket = websocket.create_connection(self.url, header=HEADERS, timeout=30)
            self.turns = 0
        self.turns += 1
        started = time.perf_counter()
        self.socket.send(
            json.dumps({"type": "prompt", "prompt": next_prompt(), "max_tokens": MAX_TOKENS})
        )
        received, failure = 0, None
        while True:
            message: dict[str, Any] = json.loads(self.socket.recv())
            received += 1
            if message["type"] == "done":
                break
            if message["type"] == "error":
                error = message["error"]
                failure = RuntimeError(f"{error.get('code')}: {error.get('message')}")
                break
        self.environment.events.request.fire(
            request_type="WS",
            name="/ws/chat reply",
            response_time=(time.perf_counter() - started) * 1000,
            response_length=received,
            exception=failure,
            context={},
        )
