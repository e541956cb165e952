"""HTTP load: the native API (whole and streamed) and /v1 chat completions, with and
without tools, in the proportions of the task weights."""

from __future__ import annotations

import json
from typing import Any

from locust import FastHttpUser, between, task
from workload import HEADERS, MAX_TOKENS, WEATHER_TOOL, next_prompt


class APIUser(FastHttpUser):
    wait_time = between(0.05, 0.2)
    model = ""

    def on_start(self) -> None:
        with self.client.get("/v1/models", headers=HEADERS, catch_response=True) as response:
            models = response.json()["data"] if response.status_code == 200 else []
            if not models:
                response.failure(f"GET /v1/models answered {response.status_code}")
                return
            self.model = models[0]["id"]

    @task(4)
    def generate(self) -> None:
        body = {"prompt": next_prompt(), "max_tokens": MAX_TOKENS}
        with self.client.post(
            "/api/v1/generate", json=body, headers=HEADERS, catch_response=True
        ) as response:
            if response.status_code != 200 or not response.json().get("text"):
                response.failure(f"{response.status_code}: {response.text[:200]}")

    @task(2)
    def generate_stream(self) -> None:
        body = {"prompt": next_prompt(), "max_tokens": MAX_TOKENS}
        with self.client.post(
            "/api/v1/generate/stream", json=body, headers=HEADERS, catch_response=True
        ) as response:
            # The whole stream is read before the request is timed as done.
            if response.status_code != 200 or "event: done" not in (response.text or ""):
                response.failure(f"{response.status_code}: stream did not end with done")

    @task(3)
    def chat(self) -> None:
        body = {
            "model": self.model,
            "messages": [{"role": "user", "content": next_prompt()}],
            "max_tokens": MAX_TOKENS,
        }
        self.chat_completion("/v1/chat/completions", body, expect="stop")

    @task(1)
    def chat_with_tools(self) -> None:
        body = {
            "model": self.model,
            "messages": [{"role": "user", "content": "What is the weather in Paris? get_weather"}],
            "tools": [WEATHER_TOOL],
            "max_tokens": MAX_TOKENS,
        }
        self.chat_completion("/v1/chat/completions [tools]", body, expect="tool_calls")

    def chat_completion(self, name: str, body: dict[str, Any], *, expect: str) -> None:
        with self.client.post(
            "/v1/chat/completions", json=body, headers=HEADERS, name=name, catch_response=True
        ) as response:
            if response.status_code != 200:
                response.failure(f"{response.status_code}: {response.text[:200]}")
                return
            finish = json.loads(response.text or "{}")["choices"][0]["finish_reason"]
            if finish not in (expect, "length"):
                response.failure(f"finish_reason {finish}, expected {expect}")
