"""Unknown query parameters on /api/v1 are a 422 that names them (`?stauts=approved` would
otherwise be ignored, and answer every loan)."""

from collections.abc import Iterator

from fastapi import Request
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import get_dependant
from fastapi.routing import APIRoute
from pydantic import BaseModel

from loanapi.errors import Unprocessable


def refuse_unknown_query(route: APIRoute) -> None:
    """Check every request of `route` for query parameters it does not take. The check is the
    route's last dependency: a caller without credentials still gets 401, and a refused role
    403, before anything about the query."""
    extra = (route.openapi_extra or {}).get("parameters", [])  # documented by hand (`format`)
    documented = {parameter["name"] for parameter in extra if parameter.get("in") == "query"}
    known = frozenset(_query_names(route.dependant)) | documented
    takes = (
        f"this endpoint takes: {', '.join(sorted(known))}" if known else "this endpoint takes none"
    )

    async def known_query_only(request: Request) -> None:
        unknown = sorted({key for key in request.query_params if key not in known})
        if unknown:
            raise Unprocessable(
                f"query.{unknown[0]}: unknown query parameter; {takes}",
                errors=[
                    {
                        "loc": ["query", name],
                        "msg": f"unknown query parameter; {takes}",
                        "type": "extra_forbidden",
                    }
                    for name in unknown
                ],
            )

    route.dependant.dependencies.append(
        get_dependant(path=route.path_format, call=known_query_only)
    )


def _query_names(dependant: Dependant) -> Iterator[str]:
    for field in dependant.query_params:
        model = field.field_info.annotation
        if isinstance(model, type) and issubclass(model, BaseModel):  # a query model's fields
            yield from (info.alias or name for name, info in model.model_fields.items())
        else:
            yield field.alias
    for sub in dependant.dependencies:
        yield from _query_names(sub)
