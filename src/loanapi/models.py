"""Imports every model module so that Base.metadata knows every table (Alembic, tests)."""


def load_all() -> None:
    import loanapi.users.models  # noqa: F401
