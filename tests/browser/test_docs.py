"""The Swagger UI at /docs, in headless Chromium, against a live `loanapi serve`.

A customer logs in through Authorize (the OAuth2 password flow at /api/v1/auth/token), runs
`GET /api/v1/auth/me` with "Try it out" and sees their own account; the page never reaches a host
other than the server (the UI's assets are served from the package, no CDN). A screenshot of the
operation with its response is saved to tests/browser/artifacts/docs-me.png.

Needs Debian's `chromium` (/usr/bin/chromium, or LOANAPI_TEST_CHROMIUM) and the Python
`playwright` package; Playwright's own browser downloads are not used. Run with
`pytest tests/browser -m browser`; locally it is skipped when either is missing, in CI it fails.
"""

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.conftest import ADMIN
from tests.live_server import live_server as serve

pytestmark = pytest.mark.browser

CHROMIUM = (
    os.environ.get("LOANAPI_TEST_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
)
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).parent / "artifacts"
SCREENSHOT = ARTIFACTS / "docs-me.png"
CUSTOMER = {"username": "carol", "email": "carol@example.com", "password": "s3cret-pass"}
UI_TIMEOUT_MS = 15_000


def _missing(message: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"CI requires the browser test's tools: {message}", pytrace=False)
    pytest.skip(message)


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[str]:
    """`loanapi serve` on a free port and a fresh SQLite database; yields its base URL."""
    with serve(tmp_path, ADMIN) as base_url:
        yield base_url


def foreign(urls: list[str]) -> list[str]:
    """Requests that left the machine: any network URL whose host is not 127.0.0.1."""
    return [
        url
        for url in urls
        if urlsplit(url).scheme not in ("data", "blob", "about")
        and urlsplit(url).hostname != "127.0.0.1"
    ]


def test_docs_authorize_and_try_auth_me(live_server: str) -> None:
    if not Path(CHROMIUM).exists():
        _missing(f"Chromium not found at {CHROMIUM} (apt-get install -y chromium)")
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        _missing("the playwright package is not installed (pip install playwright)")

    registered = httpx.post(f"{live_server}/api/v1/auth/register/customer", json=CUSTOMER)
    assert registered.status_code == 201, registered.text
    customer_id = registered.json()["id"]

    ARTIFACTS.mkdir(exist_ok=True)
    SCREENSHOT.unlink(missing_ok=True)
    requests: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 1000})
            # Record every request; one for another host is also cut off, so that the page
            # cannot hang on a closed network (it still fails the assertion below).
            context.on("request", lambda request: requests.append(request.url))
            context.route(
                re.compile(r"^(?!https?://127\.0\.0\.1[:/]).*"), lambda route: route.abort()
            )
            page = context.new_page()
            page.set_default_timeout(UI_TIMEOUT_MS)
            expect.set_options(timeout=UI_TIMEOUT_MS)

            page.goto(f"{live_server}/docs", wait_until="networkidle")
            expect(page.locator(".swagger-ui .info .title")).to_contain_text("loanapi")
            assert foreign(requests) == [], f"/docs reached other hosts: {foreign(requests)}"
            assert f"{live_server}/static-offline-docs/swagger-ui-bundle.js" in requests
            assert f"{live_server}/openapi.json" in requests

            # Authorize: the OAuth2 password flow's form in the dialog.
            page.locator(".swagger-ui .auth-wrapper button.authorize").click()
            dialog = page.locator(".swagger-ui .dialog-ux .modal-ux")
            expect(dialog).to_be_visible()
            oauth2 = dialog.locator(".auth-container").filter(has_text="OAuth2PasswordBearer")
            oauth2.locator("#oauth_username").fill(CUSTOMER["username"])
            oauth2.locator("#oauth_password").fill(CUSTOMER["password"])
            with page.expect_response(
                lambda response: response.url.endswith("/api/v1/auth/token")
            ) as token_response:
                oauth2.locator("button.authorize", has_text="Authorize").click()
            assert token_response.value.status == 200, token_response.value.text()
            expect(oauth2.locator("h6")).to_have_text("Authorized")
            expect(oauth2.locator("button.authorize", has_text="Logout")).to_be_visible()
            oauth2.locator("button.btn-done").click()
            expect(dialog).to_be_hidden()

            # GET /api/v1/auth/me: expand, "Try it out", "Execute".
            operation = page.locator("#operations-auth-auth_me")
            operation.locator(".opblock-summary").click()
            operation.locator("button.try-out__btn").click()
            with page.expect_response(
                lambda response: response.url.endswith("/api/v1/auth/me")
            ) as me_response:
                operation.locator("button.execute").click()
            assert me_response.value.status == 200, me_response.value.text()
            sent = me_response.value.request.header_value("authorization") or ""
            assert sent.startswith("Bearer "), f"no bearer token sent: {sent!r}"

            live = operation.locator(".live-responses-table")
            expect(live.locator(".response .response-col_status").first).to_have_text("200")
            body = live.locator(".response-col_description pre.microlight").first
            expect(body).to_contain_text(f'"username": "{CUSTOMER["username"]}"')
            expect(body).to_contain_text(f'"id": {customer_id}')
            expect(body).to_contain_text('"role": "customer"')

            operation.scroll_into_view_if_needed()
            operation.screenshot(path=str(SCREENSHOT), animations="disabled")
            _shows_a_described_operation(page, expect)
            assert foreign(requests) == [], f"/docs reached other hosts: {foreign(requests)}"
        finally:
            browser.close()

    assert SCREENSHOT.is_file()
    assert SCREENSHOT.stat().st_size > 10_000
    assert SCREENSHOT.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _shows_a_described_operation(page, expect) -> None:  # noqa: ANN001 (playwright's types)
    """An agent's loan list as /docs shows it: its description, its parameters' plain types,
    and a response example with real values."""
    operation = page.locator("#operations-agent-agent_list_loans")
    operation.locator(".opblock-summary").click()
    expect(operation.locator(".opblock-description-wrapper")).to_contain_text("combine with AND")
    types = {"created_from": "string", "customer_id": "integer", "status": "string"}
    for name, shown in types.items():
        row = operation.locator(f'tr[data-param-name="{name}"]')
        expect(row.locator(".parameter__type")).to_have_text(shown)
    expect(operation.locator('tr[data-param-name="bucket"] select')).to_be_visible()  # an enum
    example = operation.locator(".responses-wrapper .response").first.locator(".microlight")
    expect(example.first).to_contain_text('"customer_username": "')
    assert '"string"' not in example.first.inner_text()


def test_redoc_loads_nothing_from_another_host(live_server: str) -> None:
    """ReDoc renders the document from the server alone: no font, logo or script elsewhere."""
    if not Path(CHROMIUM).exists():
        _missing(f"Chromium not found at {CHROMIUM} (apt-get install -y chromium)")
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        _missing("the playwright package is not installed (pip install playwright)")
    requests: list[str] = []
    failures: dict[str, str] = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 1000})
            context.on("request", lambda request: requests.append(request.url))
            context.on("requestfailed", lambda r: failures.update({r.url: r.failure or ""}))
            page = context.new_page()
            page.set_default_timeout(UI_TIMEOUT_MS)
            page.goto(f"{live_server}/redoc", wait_until="networkidle")
            expect(page.locator("h1").first).to_contain_text("loanapi", timeout=UI_TIMEOUT_MS)
            page.mouse.wheel(0, 20_000)  # further down: the operations, their examples
            page.wait_for_load_state("networkidle")
        finally:
            browser.close()
    assert f"{live_server}/static-offline-docs/redoc.standalone.js" in requests
    # The bundle asks for its maker's logo on a CDN; the page's Content-Security-Policy makes
    # the browser refuse it before it leaves (nothing here aborts it: the policy must).
    left = [
        url
        for url in foreign(requests)
        if failures.get(url) not in ("csp", "net::ERR_BLOCKED_BY_CSP")
    ]
    assert left == [], f"/redoc reached other hosts: {left} ({failures})"
