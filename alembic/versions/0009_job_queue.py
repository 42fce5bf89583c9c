"""the job queue's schema: Procrastinate's tables, on PostgreSQL

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30

`loanapi worker` runs scheduled jobs (close of business) on Procrastinate, a job queue kept in
PostgreSQL itself. Its schema is the one its installed version ships (`SchemaManager.get_schema`,
pinned in pyproject.toml); a later Procrastinate upgrade comes with a revision that applies its
migration scripts. On SQLite there is no queue: `loanapi serve` runs the jobs in-process.
"""

from collections.abc import Sequence

from alembic import op
from procrastinate.schema import SchemaManager
from sqlalchemy.util import await_only

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OBJECTS = """
SELECT 'DROP TABLE IF EXISTS ' || string_agg(quote_ident(tablename), ', ') || ' CASCADE'
FROM pg_tables WHERE schemaname = current_schema() AND tablename LIKE 'procrastinate%'
UNION ALL
SELECT 'DROP FUNCTION IF EXISTS ' || string_agg(p.oid::regprocedure::text, ', ') || ' CASCADE'
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname = current_schema() AND p.proname LIKE 'procrastinate%'
UNION ALL
SELECT 'DROP TYPE IF EXISTS ' || string_agg(quote_ident(typname), ', ') || ' CASCADE'
FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
WHERE n.nspname = current_schema() AND typname LIKE 'procrastinate%'
  AND (typtype = 'e' OR (typtype = 'c' AND (
      SELECT relkind FROM pg_class WHERE oid = typrelid) = 'c'))
"""


def _script(sql: str) -> None:
    """Run a multi-statement script (functions with $$ bodies) as asyncpg's simple query."""
    raw = op.get_bind().connection.dbapi_connection.driver_connection  # type: ignore[union-attr]
    await_only(raw.execute(sql))


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    _script(SchemaManager.get_schema())


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    for (statement,) in bind.exec_driver_sql(OBJECTS).all():
        if statement:
            _script(statement)
