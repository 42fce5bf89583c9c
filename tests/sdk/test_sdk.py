"""A Python SDK generated from the app's OpenAPI document drives a live `loanapi serve`.

The document is dumped with `loanapi openapi`, a client package (`loanapi_client`) is generated
from it with `openapi-python-client` (offline: no post hooks, plain package without metadata) and
imported; a real server on a free port with a temporary SQLite database is then driven through
the generated functions only: register -> token -> apply -> list -> agent request -> admin
approve. The generator must not warn about any part of the document.

Run with `pytest tests/sdk -m sdk`.
"""

import importlib
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ADMIN
from tests.live_server import live_server as serve

pytestmark = pytest.mark.sdk

BIN = Path(sys.executable).parent
CLI = BIN / "loanapi"
GENERATOR = BIN / "openapi-python-client"
PACKAGE = "loanapi_client"
PASSWORD = "s3cret-pass"
# Lines of the generator's output that are not a problem with the document.
GENERATOR_NOISE = re.compile(r"^(Generating .*)?$")
# Warnings the generator is allowed to print about the document: none.
ALLOWED_GENERATOR_WARNINGS: set[str] = set()
# No ruff/black post hooks: they are not needed to import the client and keep this offline.
GENERATOR_CONFIG = "post_hooks: []\n"


def _need(path: Path, what: str) -> None:
    if path.exists():
        return
    message = f"{path} not found: {what}"
    if os.environ.get("CI"):
        pytest.fail(f"CI requires the SDK generator: {message}", pytrace=False)
    pytest.skip(message)


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[str]:
    """`loanapi serve` on a free port and a fresh SQLite database; yields its base URL."""
    with serve(tmp_path, ADMIN) as base_url:
        yield base_url


@dataclass
class Generated:
    root: Path  # the directory holding the package
    output: str  # everything the generator printed


@pytest.fixture(scope="module")
def sdk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Generated]:
    """Generate `loanapi_client` from `loanapi openapi` once and make it importable."""
    _need(CLI, "install the project (pip install -e '.[dev]')")
    _need(GENERATOR, "pip install openapi-python-client")
    workdir = tmp_path_factory.mktemp("sdk")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOANAPI_")}
    document = workdir / "openapi.json"
    dumped = subprocess.run(
        [str(CLI), "openapi"], env=env, cwd=workdir, capture_output=True, text=True, timeout=60
    )
    assert dumped.returncode == 0, dumped.stderr
    document.write_text(dumped.stdout)
    config = workdir / "config.yml"
    config.write_text(GENERATOR_CONFIG)
    generated = subprocess.run(
        [
            str(GENERATOR),
            "generate",
            "--path",
            str(document),
            "--output-path",
            str(workdir / PACKAGE),
            "--meta",
            "none",
            "--config",
            str(config),
        ],
        env={**env, "NO_COLOR": "1", "TERM": "dumb", "COLUMNS": "200"},
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = generated.stdout + generated.stderr
    assert generated.returncode == 0, output
    assert (workdir / PACKAGE / "__init__.py").is_file(), output

    sys.path.insert(0, str(workdir))
    importlib.invalidate_caches()
    try:
        yield Generated(workdir, output)
    finally:
        sys.path.remove(str(workdir))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(f"{PACKAGE}.")]:
            del sys.modules[name]


def generator_complaints(output: str) -> set[str]:
    """Lines of the generator's output other than its progress line (warnings, errors)."""
    return {line.strip() for line in output.splitlines() if not GENERATOR_NOISE.match(line.strip())}


def test_generator_accepts_the_document_without_warnings(sdk: Generated) -> None:
    assert not re.search(r"warning|error", sdk.output, re.IGNORECASE), sdk.output
    assert generator_complaints(sdk.output) == ALLOWED_GENERATOR_WARNINGS, sdk.output


def test_loan_workflow_through_the_generated_client(sdk: Generated, live_server: str) -> None:
    from loanapi_client import AuthenticatedClient, Client
    from loanapi_client.api.admin import (
        admin_approve_agent,
        admin_approve_loan,
        admin_list_agent_applications,
    )
    from loanapi_client.api.agent import agent_request_loan
    from loanapi_client.api.auth import (
        auth_me,
        auth_register_agent,
        auth_register_customer,
        auth_token,
    )
    from loanapi_client.api.customer import (
        customer_apply_loan,
        customer_get_loan,
        customer_list_loans,
    )
    from loanapi_client.models import (
        BodyAuthToken,
        LoanCreate,
        LoanRead,
        LoanStatus,
        LoanType,
        PageLoanRead,
        PageUserRead,
        Problem,
        Role,
        Token,
        UserCreate,
        UserRead,
        UserStatus,
    )

    def expect(value: Any, kind: type) -> Any:
        """The parsed body, of the documented model (a Problem or None says what went wrong)."""
        assert isinstance(value, kind), f"expected {kind.__name__}, got {value!r}"
        return value

    def authenticated(username: str, password: str = PASSWORD) -> AuthenticatedClient:
        form = BodyAuthToken(username=username, password=password)
        token = expect(auth_token.sync(client=anonymous, body=form), Token)
        return AuthenticatedClient(
            base_url=live_server, token=token.access_token, raise_on_unexpected_status=True
        )

    anonymous = Client(base_url=live_server, raise_on_unexpected_status=True)

    def new_user(role: str, username: str) -> UserRead:
        body = UserCreate(username=username, email=f"{username}@example.com", password=PASSWORD)
        register = auth_register_customer if role == "customer" else auth_register_agent
        return expect(register.sync(client=anonymous, body=body), UserRead)

    carol = new_user("customer", "carol")
    assert (carol.role, carol.status) == (Role.CUSTOMER, UserStatus.ACTIVE)
    andy = new_user("agent", "andy")
    assert (andy.role, andy.status) == (Role.AGENT, UserStatus.PENDING)

    # The admin logs in through the token endpoint (a form body) and approves the agent.
    admin = authenticated(ADMIN["username"], ADMIN["password"])
    assert expect(auth_me.sync(client=admin), UserRead).role == Role.ADMIN
    pending = expect(admin_list_agent_applications.sync(client=admin), PageUserRead)
    assert [user.id for user in pending.items] == [andy.id]
    approved_agent = expect(admin_approve_agent.sync(andy.id, client=admin), UserRead)
    assert approved_agent.status == UserStatus.ACTIVE

    customer = authenticated("carol")
    agent = authenticated("andy")
    assert expect(auth_me.sync(client=customer), UserRead).id == carol.id

    # 10000 at home_loan (6.90%) over 12 months: emi 864.81, total 10377.67 (API.md).
    application = LoanCreate(loan_type=LoanType.HOME_LOAN, principal="10000", tenure_months=12)
    loan = expect(
        customer_apply_loan.sync(
            client=customer, body=application, idempotency_key="sdk-first-application"
        ),
        LoanRead,
    )
    assert (loan.customer_id, loan.status, loan.version) == (carol.id, LoanStatus.NEW, 1)
    assert (loan.principal, loan.annual_rate, loan.emi) == ("10000.00", "6.90", "864.81")
    assert loan.total_payable == "10377.67"
    assert loan.agent_id is None

    page = expect(customer_list_loans.sync(client=customer), PageLoanRead)
    assert [item.id for item in page.items] == [loan.id]
    assert page.items[0].emi == "864.81"

    requested = expect(agent_request_loan.sync(loan.id, client=agent), LoanRead)
    assert (requested.status, requested.agent_id) == (LoanStatus.REQUESTED, andy.id)

    decided = expect(admin_approve_loan.sync(loan.id, client=admin), LoanRead)
    assert decided.status == LoanStatus.APPROVED

    final = expect(customer_get_loan.sync(loan.id, client=customer), LoanRead)
    assert (final.status, final.agent_id, final.emi) == (LoanStatus.APPROVED, andy.id, "864.81")
    assert final.version == 3

    # Errors are parsed into the documented problem model: approved is final (409).
    again = expect(admin_approve_loan.sync(loan.id, client=admin), Problem)
    assert again.status == 409
