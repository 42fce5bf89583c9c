"""Imports every model module so that Base.metadata knows every table (Alembic, tests)."""


def load_all() -> None:
    import loanapi.idempotency  # noqa: F401
    import loanapi.loans.models  # noqa: F401
    import loanapi.throttle  # noqa: F401
    import loanapi.users.models  # noqa: F401
    import loanapi.webhooks.models  # noqa: F401
