async def test_health(client):
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response.headers["x-request-id"]


async def test_me(client, customer):
    response = await client.get("/api/v1/auth/me", headers=customer.headers)
    assert response.status_code == 200, response.text
    assert response.json()["username"] == "carol"
