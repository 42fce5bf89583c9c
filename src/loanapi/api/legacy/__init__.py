"""The original Flask system's endpoints, kept for its clients (LEGACY.md).

`routes` maps each original call onto the /api/v1 services; `fields` is the one mapping from
loanapi's rows to the original's keys and values; `errors` and `deps` give its answers and
refusals their original shapes and words.
"""

from fastapi.routing import APIRoute

from loanapi.api.legacy.routes import router
from loanapi.api.legacy.schemas import LegacyLoanCreate, LegacyLoanEdit

# Bodies read after the caller's checks (`deps.body_of`), so /docs learns of them here.
BODY_MODELS = (LegacyLoanCreate, LegacyLoanEdit)


def path_heads() -> dict[str, str]:
    """The first segment of every legacy path, by its lower case: clients spell them in
    several cases (/all_Users, /all_users)."""
    return {
        head.lower(): head
        for route in router.routes
        if isinstance(route, APIRoute)
        for head in [route.path.strip("/").split("/")[0]]
    }


__all__ = ["BODY_MODELS", "path_heads", "router"]
