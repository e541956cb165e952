"""JWT authentication: the token endpoint (OAuth2 password flow), bad tokens, password
guessing, `create-user`, OpenAPI, and the secret's refusals."""

from __future__ import annotations

import asyncio
import getpass
import statistics
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import jwt
import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import func, select
from starlette.requests import HTTPConnection

from {{ cookiecutter.project_slug }}.__main__ import main
from {{ cookiecutter.project_slug }}.api.auth import admit_login
from {{ cookiecutter.project_slug }}.auth import passwords
from {{ cookiecutter.project_slug }}.core.errors import APIError
from {{ cookiecutter.project_slug }}.core.ratelimit import MemoryRateLimiter
from {{ cookiecutter.project_slug }}.db.engine import open_database
from {{ cookiecutter.project_slug }}.db.models import GenerationLog
from {{ cookiecutter.project_slug }}.db.users import UserRecord
from {{ cookiecutter.project_slug }}.main import create_app
from {{ cookiecutter.project_slug }}.settings import Settings, get_settings

from .auth_jwt import JWT_SECRET, token_for
from .commands import command, one_line_error
from .conftest import make_settings
from .test_ratelimit import Clock, run

TOKEN_URL = "/api/v1/auth/token"
PASSWORD = "correct horse battery staple"
PROMPT = {"prompt": "hi", "max_tokens": 3}
OPEN_PATHS = ["/", "/health/live", "/health/ready", "/health", "/docs", "/redoc", "/openapi.json"]


def new_user(scopes: tuple[str, ...] = ()) -> str:
    """A user in the run's database, with PASSWORD; returns the username."""
    username = f"user-{uuid.uuid4().hex[:8]}"

    async def create() -> None:
        async with open_database(make_settings()) as database:
            await passwords.create_user(database, username, PASSWORD, scopes)

    asyncio.run(create())
    return username


def log_in(client: TestClient, username: str, password: str, **form: str) -> Any:
    """What /docs' Authorize dialog does: the password flow's form, posted to tokenUrl."""
    data = {"grant_type": "password", "username": username, "password": password, **form}
    return client.post(TOKEN_URL, data=data)


def database_state(settings: Settings) -> tuple[Any, ...]:
    """Every users row and the size of the generation log, read outside any app."""

    async def read() -> tuple[Any, ...]:
        async with open_database(settings) as database, database.session() as session:
            users = await session.scalars(select(UserRecord).order_by(UserRecord.id))
            logged = await session.scalar(select(func.count()).select_from(GenerationLog))
            return tuple((u.id, u.username, u.password_hash, u.scopes) for u in users), logged

    return asyncio.run(read())


def refused_with(response: Any, code: str) -> dict[str, Any]:
    assert response.status_code == 401, response.text
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    error: dict[str, Any] = response.json()["error"]
    assert (error["type"], error["code"]) == ("authentication_error", code)
    return error


def test_a_token_from_the_form_opens_the_protected_routes(client: TestClient) -> None:
    username = new_user()
    response = log_in(client, username, PASSWORD)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 30 * 60
    claims = jwt.decode(
        body["access_token"], JWT_SECRET, algorithms=["HS256"], audience="{{ cookiecutter.project_slug }}"
    )
    assert claims["iss"] == "{{ cookiecutter.project_slug }}"
    assert claims["exp"] - claims["iat"] == 30 * 60
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    assert client.get("/v1/models", headers=headers).status_code == 200
    job = client.post("/api/v1/jobs", json=PROMPT, headers=headers)
    assert job.status_code == 202
    # Another token of the same user is the same caller.
    again = log_in(client, username, PASSWORD).json()["access_token"]
    mine = client.get(job.headers["Location"], headers={"Authorization": f"Bearer {again}"})
    assert mine.status_code == 200


def test_openapi_declares_the_password_flow_on_every_protected_operation(
    client: TestClient,
) -> None:
    document = client.get("/openapi.json").json()
    scheme = document["components"]["securitySchemes"]["OAuth2Password"]
    assert scheme["type"] == "oauth2"
    assert scheme["flows"]["password"]["tokenUrl"] == TOKEN_URL
    token_operation = document["paths"][TOKEN_URL]["post"]
    assert "security" not in token_operation
    assert "application/x-www-form-urlencoded" in token_operation["requestBody"]["content"]
    for path, methods in document["paths"].items():
        for operation in methods.values():
            if path in OPEN_PATHS or path == TOKEN_URL:
                assert "security" not in operation, path
            else:
                assert operation.get("security") == [{"OAuth2Password": []}], path


@pytest.mark.parametrize("path", OPEN_PATHS)
def test_health_and_docs_need_no_token(client: TestClient, path: str) -> None:
    assert client.get(path).status_code == 200


def ago(**delta: float) -> datetime:
    return datetime.now(UTC) - timedelta(**delta)


def forged(**changes: Any) -> str:
    """A token like the service's, with `changes` to its claims (None removes one)."""
    now = datetime.now(UTC)
    claims: dict[str, Any] = {
        "sub": "forged",
        "iss": "{{ cookiecutter.project_slug }}",
        "aud": "{{ cookiecutter.project_slug }}",
        "iat": now,
        "exp": now + timedelta(minutes=5),
    }
    claims.update(changes)
    return jwt.encode({k: v for k, v in claims.items() if v is not None}, JWT_SECRET, "HS256")


BAD_TOKENS: dict[str, tuple[Callable[[], dict[str, str]], str]] = {
    "missing": (dict, "missing_token"),
    "empty": (lambda: {"Authorization": "Bearer "}, "missing_token"),
    "malformed": (lambda: {"Authorization": "Bearer not-a-jwt"}, "malformed_token"),
    "expired": (  # past the clock leeway too
        lambda: {"Authorization": f"Bearer {forged(iat=ago(minutes=10), exp=ago(minutes=2))}"},
        "token_expired",
    ),
    "wrongly-signed": (
        lambda: {"Authorization": f"Bearer {token_for('x', jwt_secret='another-' + JWT_SECRET)}"},
        "invalid_signature",
    ),
    "wrong-audience": (
        lambda: {"Authorization": f"Bearer {token_for('x', jwt_audience='another-service')}"},
        "invalid_audience",
    ),
    "wrong-issuer": (
        lambda: {"Authorization": f"Bearer {token_for('x', jwt_issuer='someone-else')}"},
        "invalid_issuer",
    ),
    "alg-none": (
        # PyJWT takes "" as no key, which is what `alg: none` needs.
        lambda: {"Authorization": f"Bearer {jwt.encode({'sub': 'x'}, '', 'none')}"},
        "invalid_algorithm",
    ),
    "no-expiry": (lambda: {"Authorization": f"Bearer {forged(exp=None)}"}, "invalid_token"),
}


@pytest.mark.parametrize(("make_headers", "code"), BAD_TOKENS.values(), ids=BAD_TOKENS.keys())
def test_bad_tokens_are_refused_naming_the_problem_and_nothing_changes(
    make_headers: Callable[[], dict[str, str]], code: str
) -> None:
    settings = make_settings()
    headers = make_headers()
    before = database_state(settings)
    with TestClient(create_app(settings)) as client:
        error = refused_with(client.post("/api/v1/generate", json=PROMPT, headers=headers), code)
        refused_with(client.get("/v1/models", headers=headers), code)
    assert error["message"].endswith(".")
    if code == "invalid_token":
        assert '"exp"' in error["message"]
    assert database_state(settings) == before


def test_a_valid_forged_shape_is_accepted_so_the_refusals_above_are_for_their_reason(
    client: TestClient,
) -> None:
    headers = {"Authorization": f"Bearer {forged()}"}
    assert client.get("/v1/models", headers=headers).status_code == 200


def test_password_guessing_gets_401s_in_constant_time_and_changes_nothing(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    username = new_user()
    settings = make_settings()
    before = database_state(settings)
    checks: list[str] = []
    verify = passwords.PASSWORDS.verify

    def counted(password: str | bytes, stored: str | bytes) -> bool:
        checks.append(str(stored))
        return verify(password, stored)

    monkeypatch.setattr(passwords.PASSWORDS, "verify", counted)
    timings: dict[str, list[float]] = {"wrong password": [], "unknown user": []}
    bodies = set()
    for attempt in range(12):
        for kind, name in (("wrong password", username), ("unknown user", f"nobody-{attempt}")):
            started = time.perf_counter()
            response = log_in(client, name, f"guess-{attempt}")
            timings[kind].append(time.perf_counter() - started)
            error = refused_with(response, "invalid_credentials")
            assert error["message"] == "Incorrect username or password."
            bodies.add(response.text)
    assert len(bodies) == 1  # nothing tells an unknown user from a wrong password
    assert len(checks) == 24  # one argon2 check per attempt, unknown users included
    assert all(stored.startswith("$argon2id$") for stored in checks)
    known, unknown = (statistics.median(timings[kind]) for kind in timings)
    assert 0.5 < unknown / known < 2, timings
    assert database_state(settings) == before
    assert log_in(client, username, PASSWORD).status_code == 200  # not locked out either


def test_scopes_are_granted_as_held_and_asked(client: TestClient) -> None:
    username = new_user(scopes=("generate", "admin"))
    everything = log_in(client, username, PASSWORD).json()
    assert everything["scope"] == "admin generate"
    narrowed = log_in(client, username, PASSWORD, scope="generate").json()
    assert narrowed["scope"] == "generate"
    claims = jwt.decode(narrowed["access_token"], options={"verify_signature": False})
    assert claims["scope"] == "generate"
    refused = log_in(client, username, PASSWORD, scope="generate superuser")
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert (error["code"], error["param"]) == ("invalid_scope", "scope")
    assert "superuser" in error["message"]


def test_the_form_must_be_complete(client: TestClient) -> None:
    response = client.post(TOKEN_URL, data={"username": "someone"})
    assert response.status_code == 422
    assert response.json()["error"]["param"] == "password"


def test_create_user_makes_a_user_who_can_log_in(client: TestClient, tmp_path: Path) -> None:
    username = f"ops-{uuid.uuid4().hex[:8]}"
    made = command(
        "create-user", username, "--password-stdin", "--scopes", "generate",
        tmp_path=tmp_path, stdin=PASSWORD + "\n",
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert f"Created user '{username}'" in made.stdout
    assert PASSWORD not in made.stdout + made.stderr
    token = log_in(client, username, PASSWORD).json()
    assert token["scope"] == "generate"
    stored = [row for row in database_state(make_settings())[0] if row[1] == username]
    assert stored[0][2].startswith("$argon2id$")

    again = command("create-user", username, "--password-stdin", tmp_path=tmp_path, stdin=PASSWORD)
    assert "already exists" in one_line_error(again)
    short = command("create-user", "someone", "--password-stdin", tmp_path=tmp_path, stdin="abc")
    assert "shorter than" in one_line_error(short)
    odd = command("create-user", "two words", "--password-stdin", tmp_path=tmp_path, stdin=PASSWORD)
    assert "not a username" in one_line_error(odd)


def test_create_user_asks_twice_and_refuses_a_mismatch(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    get_settings.cache_clear()  # DATABASE_URL is the run's, set after the import
    answers = iter([PASSWORD, PASSWORD + "?"])
    monkeypatch.setattr(getpass, "getpass", lambda prompt: next(answers))
    before = database_state(make_settings())
    assert main(["create-user", f"typo-{uuid.uuid4().hex[:8]}"]) == 1
    assert "differ" in capsys.readouterr().err
    assert database_state(make_settings()) == before

    username = f"prompted-{uuid.uuid4().hex[:8]}"
    answers = iter([PASSWORD, PASSWORD])
    assert main(["create-user", username]) == 0
    assert username in capsys.readouterr().out
    get_settings.cache_clear()


@pytest.mark.parametrize(
    ("values", "environment", "phrase"),
    [
        ({"jwt_secret": ""}, "production", "ENVIRONMENT=production needs JWT_SECRET"),
        ({"jwt_secret": "change-me"}, "production", "JWT_SECRET is shorter than 32"),
        ({"jwt_secret": "x" * 31}, "production", "JWT_SECRET is shorter than 32"),
        ({"jwt_secret": "change-me"}, "development", "JWT_SECRET is shorter than 32"),
        (
            {"jwt_secret": "x" * 40, "jwt_algorithm": "HS512"},
            "test",
            "JWT_SECRET is shorter than 64",
        ),
    ],
    ids=["empty", "example", "short", "short-in-development", "short-for-hs512"],
)
def test_a_weak_secret_is_refused_in_one_sentence_naming_it(
    values: dict[str, Any], environment: str, phrase: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        make_settings(environment=environment, **values)
    (error,) = refused.value.errors()
    assert error["msg"].startswith(f"Value error, {phrase}")
    assert "\n" not in error["msg"]


def test_production_accepts_a_random_secret_and_only_hmac(client: TestClient) -> None:
    settings = make_settings(environment="production", jwt_secret="k" * 31 + "-" + "z" * 32)
    assert settings.jwt_algorithm == "HS256"
    with pytest.raises(ValidationError, match="jwt_algorithm"):
        make_settings(jwt_algorithm="RS256")


def test_without_a_secret_outside_production_no_token_is_issued_or_accepted() -> None:
    username = new_user()
    with TestClient(create_app(make_settings(jwt_secret=""))) as client:
        for response in (log_in(client, username, PASSWORD), log_in(client, username, "wrong")):
            assert response.status_code == 503  # the same for right and wrong passwords
            assert response.json()["error"]["code"] == "jwt_secret_unset"
        refused = client.get("/v1/models", headers={"Authorization": f"Bearer {forged()}"})
        assert refused.status_code == 503
        assert "JWT_SECRET" in refused.json()["error"]["message"]


# -- sign-in attempts -------------------------------------------------------------------
@pytest.fixture
def clock() -> Clock:
    return Clock()


def sign_in_from(address: str, limiter: MemoryRateLimiter, per_minute: int) -> HTTPConnection:
    """The connection a sign-in request arrives on, as `admit_login` sees it."""
    settings = make_settings(rate_limit_login_per_minute=per_minute)
    scope = {
        "type": "http",
        "client": (address, 50000),
        "app": SimpleNamespace(state=SimpleNamespace(settings=settings)),
        "state": {"services": SimpleNamespace(rate_limiter=limiter)},
    }
    return HTTPConnection(scope)


def test_sign_ins_are_limited_per_address_and_per_username(clock: Clock) -> None:
    limiter = MemoryRateLimiter(clock)
    guesser = sign_in_from("192.0.2.1", limiter, per_minute=2)
    run(admit_login(guesser, "alice"))
    run(admit_login(guesser, "bob"))
    with pytest.raises(APIError) as from_one_address:
        run(admit_login(guesser, "carol"))  # a third account from the same address
    assert from_one_address.value.status_code == 429
    assert from_one_address.value.headers["Retry-After"] == "30"

    run(admit_login(sign_in_from("198.51.100.7", limiter, per_minute=2), "Alice"))
    with pytest.raises(APIError) as against_one_account:
        run(admit_login(sign_in_from("203.0.113.9", limiter, per_minute=2), "alice "))
    assert against_one_account.value.code == "rate_limit_exceeded"
    clock.advance(30)
    run(admit_login(sign_in_from("203.0.113.9", limiter, per_minute=2), "alice"))


def test_a_password_guessing_burst_meets_the_sign_in_limit(client: TestClient) -> None:
    limits = {"rate_limit_login_per_minute": 3}
    username = new_user()
    with TestClient(create_app(make_settings(**limits))) as limited:
        statuses = [log_in(limited, username, f"guess-{n}").status_code for n in range(5)]
        refused = log_in(limited, username, PASSWORD)
    assert statuses == [401, 401, 401, 429, 429]
    assert refused.status_code == 429  # the right password waits too: no oracle
    assert refused.json()["error"]["code"] == "rate_limit_exceeded"
    assert int(refused.headers["Retry-After"]) >= 1
