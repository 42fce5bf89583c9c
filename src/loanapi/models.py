"""Imports every model module so that Base.metadata knows every table (Alembic, tests)."""


def load_all() -> None:
    import loanapi.loans.models  # noqa: F401
    import loanapi.users.models  # noqa: F401
