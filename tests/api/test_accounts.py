"""Accounts against abuse (issue 16): Basic credentials in UTF-8, token errors that say why,
lockouts an attacker cannot turn on the owner, logout, password change and reset."""

import base64

import pytest

from tests.conftest import bearer, register
from tests.helpers import assert_problem

ACCENTED = "Crème brûlée, s'il vous plaît 9"


def basic(username: str, password: str, encoding: str = "utf-8") -> dict[str, str]:
    raw = f"{username}:{password}".encode(encoding)
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


# --- HTTP Basic in UTF-8 (RFC 7617) -----------------------------------------------------------


@pytest.mark.parametrize("encoding", ["utf-8", "latin-1"])
@pytest.mark.parametrize("path", ["/api/v1/auth/login", "/login"])
async def test_basic_credentials_with_non_ascii_passwords_log_in(client, path, encoding):
    await register(client, "customer", "amelie", password=ACCENTED)
    form = await client.post(
        "/api/v1/auth/token", data={"username": "amelie", "password": ACCENTED}
    )
    assert form.status_code == 200, form.text
    response = await client.post(path, headers=basic("amelie", ACCENTED, encoding))
    assert response.status_code == 200, response.text
    token = response.json().get("access_token") or response.json()["token"]
    me = await client.get("/api/v1/auth/me", headers=bearer(token))
    assert me.json()["username"] == "amelie"


async def test_basic_credentials_decoded_as_utf8_do_not_match_another_password(client):
    await register(client, "customer", "amelie", password=ACCENTED)
    wrong = ACCENTED.replace("è", "e")
    response = await client.post("/api/v1/auth/login", headers=basic("amelie", wrong))
    assert_problem(response, 401)


NO_COLON = "Basic " + base64.b64encode(b"no-colon").decode()


@pytest.mark.parametrize("header", ["Basic !!!notbase64", NO_COLON])
async def test_malformed_basic_credentials_are_401(client, header):
    response = await client.post("/api/v1/auth/login", headers={"Authorization": header})
    assert_problem(response, 401)
    assert response.headers["www-authenticate"].startswith("Basic")
