"""The request id: the client's `X-Request-ID` if it is sane, else a new one.

It is echoed on the response, put in every log line of the request and passed to the
model server, so one id follows a call everywhere.
"""

from __future__ import annotations

import re
import uuid

from starlette.types import Scope

REQUEST_ID_HEADER = "X-Request-ID"
# Client-supplied ids end up in logs and upstream headers: keep them short and inert.
VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def accept_request_id(incoming: str) -> str:
    return incoming if VALID_REQUEST_ID.match(incoming) else uuid.uuid4().hex


def request_id_of(scope: Scope) -> str:
    """The id the edge gave this request ("" outside a request)."""
    value = scope.get("state", {}).get("request_id", "")
    return str(value)
