"""`/ws/chat` with a real WebSocket client against the served app."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
{%- if cookiecutter.auth != "none" %}
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect
from websockets.sync.connection import Connection
from websockets.typing import Subprotocol
{%- else %}
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect
from websockets.sync.connection import Connection
{%- endif %}

from {{ cookiecutter.project_slug }}.main import create_app
{% if cookiecutter.auth != "none" %}
from .conftest import API_KEY, AUTH, AUTH_ENV, make_settings, upstream_settings
{%- else %}
from .conftest import AUTH, AUTH_ENV, make_settings, upstream_settings
{%- endif %}
from .servers import serve, service_process
from .upstream import Behaviour, Upstream


@pytest.fixture(scope="module")
def ws_url() -> Iterator[str]:
    settings = make_settings(fake_llm_token_latency_ms=5, ws_idle_timeout_s=1)
    with serve(create_app(settings)) as url:
        yield url.replace("http://", "ws://") + "/ws/chat"


def receive(ws: Connection) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(ws.recv(timeout=5))
    return message


def reply(ws: Connection) -> list[dict[str, Any]]:
    """Messages up to and including `done` (or an `error`)."""
    messages = [receive(ws)]
    while messages[-1]["type"] not in {"done", "error"}:
        messages.append(receive(ws))
    return messages


def test_prompt_streams_deltas_then_usage_and_done(ws_url: str) -> None:
    with connect(ws_url, additional_headers=AUTH) as ws:
        ws.send(json.dumps({"type": "prompt", "prompt": "hello", "max_tokens": 8}))
        messages = reply(ws)
    kinds = [m["type"] for m in messages]
    assert kinds[-2:] == ["usage", "done"]
    assert set(kinds[:-2]) == {"delta"}
    assert len(kinds) - 2 == messages[-2]["usage"]["completion_tokens"] == 8
    assert messages[-1]["finish_reason"] == "length"


def test_several_turns_on_one_connection(ws_url: str) -> None:
    with connect(ws_url, additional_headers=AUTH) as ws:
        for prompt in ("first", "second", "third"):
            ws.send(json.dumps({"type": "prompt", "prompt": prompt, "max_tokens": 4}))
            assert reply(ws)[-1]["type"] == "done"
        ws.send(json.dumps({"type": "ping"}))
        assert receive(ws) == {"type": "pong"}


def test_malformed_frames_get_an_error_and_the_socket_stays_usable(ws_url: str) -> None:
    with connect(ws_url, additional_headers=AUTH) as ws:
        ws.send("not json")
        assert receive(ws)["error"]["code"] == "invalid_message"
        ws.send(json.dumps({"type": "prompt", "prompt": "hi", "max_tokens": 0}))
        error = receive(ws)["error"]
        assert error["param"] == "prompt.max_tokens" or error["param"].endswith("max_tokens")
        ws.send(json.dumps({"type": "dance"}))
        assert receive(ws)["type"] == "error"
        ws.send(b"\x00\x01binary")
        assert receive(ws)["error"]["code"] == "invalid_message"
        ws.send(json.dumps({"type": "prompt", "prompt": "still here", "max_tokens": 3}))
        assert reply(ws)[-1]["type"] == "done"


def test_prompts_are_typed_strictly_and_kept_to_max_prompt_chars() -> None:
    settings = make_settings(max_prompt_chars=10, trusted_hosts="localhost")
    with serve(create_app(settings)) as url:
        port = url.rsplit(":", 1)[1]
        with connect(f"ws://localhost:{port}/ws/chat", additional_headers=AUTH) as ws:
            for message, param in (
                ({"prompt": "x" * 11}, "prompt"),
                ({"prompt": "hi", "max_tokens": "5"}, "max_tokens"),
                ({"prompt": "hi", "temperature": "1"}, "temperature"),
            ):
                ws.send(json.dumps({"type": "prompt", **message}))
                error = receive(ws)["error"]
                assert error["param"].endswith(param), error
            ws.send(json.dumps({"type": "prompt", "prompt": "x" * 10, "temperature": 1}))
            assert reply(ws)[-1]["type"] == "done"
        with pytest.raises(InvalidStatus) as refused:  # Host: 127.0.0.1 is not trusted
            connect(f"ws://127.0.0.1:{port}/ws/chat", additional_headers=AUTH).close()
        assert refused.value.response.status_code == 403


def test_cancel_stops_the_reply(ws_url: str) -> None:
    with connect(ws_url, additional_headers=AUTH) as ws:
        ws.send(json.dumps({"type": "prompt", "prompt": "long", "max_tokens": 2000}))
        assert receive(ws)["type"] == "delta"
        ws.send(json.dumps({"type": "cancel"}))
        done = reply(ws)[-1]
        assert done == {"type": "done", "id": done["id"], "finish_reason": "cancelled"}
{%- if cookiecutter.auth != "none" %}


def test_browsers_send_the_credential_as_a_subprotocol(ws_url: str) -> None:
    offered = Subprotocol(f"bearer.{API_KEY}")
    with connect(ws_url, subprotocols=[Subprotocol("chat"), offered]) as ws:
        assert ws.subprotocol == offered  # echoed: browsers close the socket otherwise
        ws.send(json.dumps({"type": "ping"}))
        assert receive(ws) == {"type": "pong"}


@pytest.mark.parametrize(
    ("query", "headers", "subprotocol"),
    [
        ("", {}, None),
        (f"?api_key={API_KEY}&token={API_KEY}", {}, None),  # logged by servers: never read
        ("", {"Authorization": "Bearer sk-wrong"}, None),
        ("", {}, "bearer.sk-wrong"),
        ("", {}, "bearer."),
    ],
    ids=["none", "query-string", "wrong-header", "wrong-subprotocol", "empty-subprotocol"],
)
def test_a_missing_or_wrong_credential_refuses_the_handshake(
    ws_url: str, query: str, headers: dict[str, str], subprotocol: str | None
) -> None:
    offered = [Subprotocol(subprotocol)] if subprotocol else None
    with pytest.raises(InvalidStatus) as refused:
        connect(ws_url + query, additional_headers=headers, subprotocols=offered).close()
    assert refused.value.response.status_code == 403
{%- else %}


def test_anyone_may_connect(ws_url: str) -> None:
    with connect(ws_url) as ws:
        ws.send(json.dumps({"type": "ping"}))
        assert receive(ws) == {"type": "pong"}
{%- endif %}


def test_idle_connection_is_closed(ws_url: str) -> None:
    with connect(ws_url, additional_headers=AUTH) as ws:
        start = time.monotonic()
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=5)
        assert 0.9 <= time.monotonic() - start < 4
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.reason == "idle timeout"


def test_disconnect_cancels_the_generation(upstream: Upstream, upstream_url: str) -> None:
    upstream.default = Behaviour(tokens=100, token_delay_s=0.1)
    with serve(create_app(upstream_settings(upstream_url))) as url:
        with connect(url.replace("http://", "ws://") + "/ws/chat", additional_headers=AUTH) as ws:
            ws.send(json.dumps({"type": "prompt", "prompt": "long", "max_tokens": 100}))
            assert receive(ws)["type"] == "delta"
        deadline = time.monotonic() + 5
        while upstream.disconnects < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
    assert upstream.disconnects == 1


def test_a_reply_in_progress_finishes_during_a_drain(tmp_path: Path) -> None:
    # A 3 s reply: it is still going well after the 0.2 s delay, on a busy machine too.
    variables = {"FAKE_LLM_TOKEN_LATENCY_MS": "100", "DRAIN_DELAY_S": "0.2"}
    with service_process(tmp_path, **AUTH_ENV, **variables) as (base_url, process):
        url = base_url.replace("http://", "ws://") + "/ws/chat"
        with connect(url, additional_headers=AUTH) as ws:
            ws.send(json.dumps({"type": "prompt", "prompt": "long", "max_tokens": 30}))
            assert receive(ws)["type"] == "delta"
            process.send_signal(signal.SIGTERM)
            time.sleep(0.8)  # past the delay: new work is refused, the reply goes on
            ws.send(json.dumps({"type": "prompt", "prompt": "another"}))
            messages = reply(ws)
            refused = [m for m in messages if m["type"] == "error"]
            assert refused[0]["error"]["code"] == "shutting_down"
            if messages[-1]["type"] == "error":
                messages = reply(ws)
            assert messages[-1]["type"] == "done"
            assert messages[-1]["finish_reason"] != "cancelled"
        process.communicate(timeout=20)


def test_a_prompt_over_the_rate_limit_gets_an_error_and_the_socket_stays_open() -> None:
    with (
        serve(create_app(make_settings(rate_limit_rpm=1))) as url,
        connect(url.replace("http://", "ws://") + "/ws/chat", additional_headers=AUTH) as ws,
    ):
        ws.send(json.dumps({"type": "prompt", "prompt": "first", "max_tokens": 3}))
        assert reply(ws)[-1]["type"] == "done"
        ws.send(json.dumps({"type": "prompt", "prompt": "second", "max_tokens": 3}))
        refused = reply(ws)
        ws.send(json.dumps({"type": "ping"}))
        assert receive(ws) == {"type": "pong"}
    assert [message["type"] for message in refused] == ["error"]
    error = refused[0]["error"]
    assert (error["type"], error["code"]) == ("rate_limit_error", "rate_limit_exceeded")
    assert "Please try again in " in error["message"]
