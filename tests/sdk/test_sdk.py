"""A Python SDK generated from the app's OpenAPI document drives a live `loanapi serve`.

The document is dumped with `loanapi openapi`, a client package (`loanapi_client`) is generated
from it with `openapi-python-client` (offline: no post hooks, plain package without metadata) and
imported; a real server on a free port with a fresh temporary database is then driven through
the generated functions only: register -> token -> apply -> list -> agent request -> admin
approve, and then servicing: disburse -> repay -> statement -> payoff, to the cent of
SERVICING.md's worked example, until the loan is paid off and closed. The generator must not
warn about any part of the document. The server runs on SQLite, and on PostgreSQL too when
LOANAPI_TEST_POSTGRES_URL is set.

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

from tests.conftest import ADMIN, POSTGRES_URL
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


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def live_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """`loanapi serve` on a free port and a fresh database (SQLite, or a PostgreSQL database
    created for the test and dropped after it); the server migrates it. Yields its base URL."""
    if request.param == "sqlite":
        with serve(tmp_path, ADMIN) as base_url:
            yield base_url
        return
    if not POSTGRES_URL:
        pytest.skip("PostgreSQL not available (set LOANAPI_TEST_POSTGRES_URL)")
    from tests.conftest import _create_postgres_database

    url, drop = _create_postgres_database()
    try:
        with serve(tmp_path, ADMIN, env={"LOANAPI_DATABASE_URL": url}) as base_url:
            yield base_url
    finally:
        drop()


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


def expect(value: Any, kind: type) -> Any:
    """The parsed body, of the documented model (a Problem or None says what went wrong)."""
    assert isinstance(value, kind), f"expected {kind.__name__}, got {value!r}"
    return value


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


def test_servicing_through_the_generated_client(sdk: Generated, live_server: str) -> None:
    """SERVICING.md's worked example, driven through the generated functions only: disburse ->
    repay -> statement -> payoff, down to the repayment that pays the loan off and closes it."""
    from datetime import date

    from loanapi_client import AuthenticatedClient, Client
    from loanapi_client.api.admin import (
        admin_approve_agent,
        admin_approve_loan,
        admin_disburse_loan,
        admin_list_repayments,
        admin_loan_statement,
        admin_repay_loan,
        admin_update_loan_product,
    )
    from loanapi_client.api.agent import agent_loan_payoff, agent_repay_loan, agent_request_loan
    from loanapi_client.api.auth import auth_register_agent, auth_register_customer, auth_token
    from loanapi_client.api.customer import (
        customer_apply_loan,
        customer_get_loan,
        customer_loan_payoff,
        customer_loan_statement,
    )
    from loanapi_client.api.products import list_loan_products
    from loanapi_client.models import (
        BodyAuthToken,
        Bucket,
        Disbursement,
        InstallmentStatus,
        LoanCreate,
        LoanProductRead,
        LoanProductUpdate,
        LoanRead,
        LoanStatus,
        LoanType,
        PageRepaymentRead,
        PayoffRead,
        Problem,
        RepaymentCreate,
        RepaymentRead,
        StatementRead,
        Token,
        UserCreate,
        UserRead,
    )

    anonymous = Client(base_url=live_server, raise_on_unexpected_status=True)

    def authenticated(username: str, password: str = PASSWORD) -> AuthenticatedClient:
        form = BodyAuthToken(username=username, password=password)
        token = expect(auth_token.sync(client=anonymous, body=form), Token)
        return AuthenticatedClient(
            base_url=live_server, token=token.access_token, raise_on_unexpected_status=True
        )

    def new_user(register: Any, username: str) -> UserRead:
        body = UserCreate(username=username, email=f"{username}@example.com", password=PASSWORD)
        return expect(register.sync(client=anonymous, body=body), UserRead)

    admin = authenticated(ADMIN["username"], ADMIN["password"])
    carol = new_user(auth_register_customer, "carol")
    andy = new_user(auth_register_agent, "andy")
    expect(admin_approve_agent.sync(andy.id, client=admin), UserRead)
    customer, agent = authenticated("carol"), authenticated("andy")

    # personal_loan charges 25.00 once an installment is 5 days past due unpaid.
    (product,) = [
        p
        for p in list_loan_products.sync(client=anonymous) or []
        if p.loan_type.value == "personal_loan"
    ]
    assert (product.annual_rate, product.late_fee, product.grace_days) == ("10.75", "0.00", 5)
    update = LoanProductUpdate(
        annual_rate=product.annual_rate,
        min_principal=product.min_principal,
        max_principal=product.max_principal,
        min_tenure_months=product.min_tenure_months,
        max_tenure_months=product.max_tenure_months,
        late_fee="25.00",
        grace_days=5,
    )
    updated = expect(
        admin_update_loan_product.sync(LoanType.PERSONAL_LOAN, client=admin, body=update),
        LoanProductRead,
    )
    assert (updated.late_fee, updated.grace_days) == ("25.00", 5)

    application = LoanCreate(loan_type=LoanType.PERSONAL_LOAN, principal="12000", tenure_months=12)
    loan = expect(customer_apply_loan.sync(client=customer, body=application), LoanRead)
    assert (loan.customer_id, loan.emi) == (carol.id, "1059.18")
    expect(agent_request_loan.sync(loan.id, client=agent), LoanRead)
    approved = expect(admin_approve_loan.sync(loan.id, client=admin), LoanRead)
    assert (approved.status, approved.disbursed_on) == (LoanStatus.APPROVED, None)

    # A repayment before disbursement: the documented problem, 409.
    early = agent_repay_loan.sync(loan.id, client=agent, body=RepaymentCreate(amount="1.00"))
    assert expect(early, Problem).status == 409

    # Disburse (back-dated: a book being migrated).
    disbursement = Disbursement(disbursed_on=date(2025, 1, 15), first_due_on=date(2025, 2, 15))
    active = expect(
        admin_disburse_loan.sync(
            loan.id, client=admin, body=disbursement, idempotency_key="sdk-disburse"
        ),
        LoanRead,
    )
    assert (active.status, active.version) == (LoanStatus.ACTIVE, 4)
    assert (active.disbursed_on, active.first_due_on) == (date(2025, 1, 15), date(2025, 2, 15))
    assert (active.late_fee, active.grace_days, active.principal_outstanding) == (
        "25.00",
        5,
        "12000.00",
    )
    again = admin_disburse_loan.sync(loan.id, client=admin, body=disbursement)
    assert expect(again, Problem).status == 409  # only approved loans are disbursed

    # Repay installment 1 on its due date (the agent).
    first = expect(
        agent_repay_loan.sync(
            loan.id,
            client=agent,
            body=RepaymentCreate(
                amount="1059.18", paid_on=date(2025, 2, 15), reference="BANK-0001"
            ),
            idempotency_key="sdk-repay-1",
        ),
        RepaymentRead,
    )
    assert (first.loan_id, first.amount, first.paid_on, first.reference) == (
        loan.id,
        "1059.18",
        date(2025, 2, 15),
        "BANK-0001",
    )
    assert (first.principal, first.interest, first.penalty, first.reversed_) == (
        "951.68",
        "107.50",
        "0.00",
        False,
    )
    assert first.actor_id == andy.id

    # Payoff on 2025-03-01: 14 of installment 2's 28 days of interest.
    quote = expect(
        customer_loan_payoff.sync(loan.id, client=customer, on=date(2025, 3, 1)), PayoffRead
    )
    assert (quote.on, quote.principal, quote.interest, quote.penalty, quote.total) == (
        date(2025, 3, 1),
        "11048.32",
        "49.49",
        "0.00",
        "11097.81",
    )

    # Statement on 2025-04-01: installment 2 unpaid and charged its fee on 2025-03-21.
    late = expect(
        customer_loan_statement.sync(loan.id, client=customer, on=date(2025, 4, 1)), StatementRead
    )
    assert (late.as_of, late.status, late.dpd, late.bucket, late.arrears) == (
        date(2025, 4, 1),
        LoanStatus.ACTIVE,
        17,
        Bucket("1-30"),
        "1084.18",
    )
    assert len(late.installments) == 12
    one, two, three = late.installments[:3]
    assert (one.installment, one.due_on, one.status) == (
        1,
        date(2025, 2, 15),
        InstallmentStatus.PAID,
    )
    assert (one.principal, one.interest, one.paid_principal, one.paid_interest) == (
        "951.68",
        "107.50",
        "951.68",
        "107.50",
    )
    assert (two.due_on, two.status, two.penalty, two.paid_penalty) == (
        date(2025, 3, 15),
        InstallmentStatus.OVERDUE,
        "25.00",
        "0.00",
    )
    assert (two.principal, two.interest) == ("960.21", "98.97")
    assert (three.due_on, three.principal, three.interest, three.status) == (
        date(2025, 4, 15),
        "968.81",
        "90.37",
        InstallmentStatus.FUTURE,
    )
    assert [r.id for r in late.repayments] == [first.id]

    # Repay 1500.00 on 2025-04-02 (the admin): the fee, installment 2, then part of 3.
    second = expect(
        admin_repay_loan.sync(
            loan.id,
            client=admin,
            body=RepaymentCreate(amount="1500.00", paid_on=date(2025, 4, 2), reference="BANK-0002"),
        ),
        RepaymentRead,
    )
    assert (second.penalty, second.interest, second.principal) == ("25.00", "189.34", "1285.66")

    current = expect(
        admin_loan_statement.sync(loan.id, client=admin, on=date(2025, 4, 10)), StatementRead
    )
    assert (current.dpd, current.bucket, current.arrears) == (0, Bucket.CURRENT, "0.00")
    assert [i.status for i in current.installments[:4]] == [
        InstallmentStatus.PAID,
        InstallmentStatus.PAID,
        InstallmentStatus.PARTIAL,
        InstallmentStatus.FUTURE,
    ]
    three = current.installments[2]
    assert (three.paid_principal, three.paid_interest) == ("325.45", "90.37")
    assert current.principal_outstanding == "9762.66"
    assert [(r.id, r.reversed_) for r in current.repayments] == [
        (first.id, False),
        (second.id, False),
    ]

    # Payoff on 2025-04-10, and paying exactly that closes the loan.
    quote = expect(agent_loan_payoff.sync(loan.id, client=agent, on=date(2025, 4, 10)), PayoffRead)
    assert (quote.principal, quote.interest, quote.penalty, quote.total) == (
        "9762.66",
        "0.00",
        "0.00",
        "9762.66",
    )
    # One cent more than the payoff is refused (422), and nothing is recorded.
    over = agent_repay_loan.sync(
        loan.id, client=agent, body=RepaymentCreate(amount="9762.67", paid_on=date(2025, 4, 10))
    )
    problem = expect(over, Problem)
    assert problem.status == 422
    assert "9762.66" in str(problem.to_dict()), problem.to_dict()
    payoff = expect(
        agent_repay_loan.sync(
            loan.id,
            client=agent,
            body=RepaymentCreate(amount=quote.total, paid_on=date(2025, 4, 10)),
        ),
        RepaymentRead,
    )
    assert (payoff.principal, payoff.interest, payoff.penalty) == ("9762.66", "0.00", "0.00")

    closed = expect(customer_get_loan.sync(loan.id, client=customer), LoanRead)
    assert (closed.status, closed.closed_on, closed.principal_outstanding) == (
        LoanStatus.CLOSED,
        date(2025, 4, 10),
        "0.00",
    )
    final = expect(customer_loan_statement.sync(loan.id, client=customer), StatementRead)
    assert final.status == LoanStatus.CLOSED
    assert all(i.status == InstallmentStatus.PAID for i in final.installments)
    assert final.installments[2].waived_interest == "0.00"  # paid in full before the payoff
    for installment in final.installments[3:]:  # 4-12: their interest waived, none paid
        assert (installment.paid_interest, installment.waived_interest) == (
            "0.00",
            installment.interest,
        )
    zero = expect(customer_loan_payoff.sync(loan.id, client=customer), PayoffRead)
    assert (zero.principal, zero.interest, zero.penalty, zero.total) == ("0.00",) * 4
    closed_again = agent_repay_loan.sync(loan.id, client=agent, body=RepaymentCreate(amount="1.00"))
    assert expect(closed_again, Problem).status == 409

    # Reconciliation: the three repayments, newest first.
    listed = expect(admin_list_repayments.sync(client=admin, loan_id=loan.id), PageRepaymentRead)
    assert [r.id for r in listed.items] == [payoff.id, second.id, first.id]
