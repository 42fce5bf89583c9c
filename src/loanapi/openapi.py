"""The OpenAPI document, tidied once: every error of /api/v1 is documented as problem+json."""

from collections.abc import Callable, Sequence
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

from loanapi.errors import PROBLEM_JSON, problem_example

PROBLEM = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}
# The legacy routes answer errors in the original's {"Message": ...} shape.
LEGACY_MESSAGE = {"application/json": {"schema": {"$ref": "#/components/schemas/Message"}}}


def _errors_as(
    operation: dict[str, Any], content: Callable[[int], dict[str, Any]], *, keep: bool
) -> None:
    """Set every error's content; with `keep`, only where FastAPI put its own 422 schema."""
    for status, response in operation.get("responses", {}).items():
        if not (status.isdigit() and int(status) >= 400):
            continue
        if keep and "HTTPValidationError" not in str(response.get("content", "")):
            continue
        response["content"] = content(int(status))


def _problem(status: int) -> dict[str, Any]:
    """problem+json, with an example of the status (Swagger UI and ReDoc show it)."""
    return {PROBLEM_JSON: {**PROBLEM[PROBLEM_JSON], "example": problem_example(status)}}


NULL = {"type": "null"}


def _plain(parameter: dict[str, Any]) -> None:
    """An optional parameter's `anyOf: [T, null]` shown as plain T (Swagger UI then shows the
    type, its format and an enum's dropdown); leaving it out is how a client says "none"."""
    schema = parameter.get("schema", {})
    options = schema.get("anyOf", [])
    if parameter.get("required") or len(options) != 2 or NULL not in options:
        return
    (kept,) = (option for option in options if option != NULL)
    rest = {key: value for key, value in schema.items() if key != "anyOf"}
    parameter["schema"] = {**kept, **rest}


def tidy(schema: dict[str, Any]) -> dict[str, Any]:
    """Errors are problem+json everywhere but on the legacy routes, which keep their shapes;
    optional parameters have plain types."""
    for methods in schema.get("paths", {}).values():
        for operation in methods.values():
            legacy = "legacy" in operation.get("tags", [])
            _errors_as(operation, (lambda _: LEGACY_MESSAGE) if legacy else _problem, keep=legacy)
            for parameter in operation.get("parameters", []):
                _plain(parameter)
    components = schema.get("components", {}).get("schemas", {})
    still_used = str(schema.get("paths", {}))
    for name in ("HTTPValidationError", "ValidationError"):
        if f"#/components/schemas/{name}" not in still_used:
            components.pop(name, None)
    return schema


REF = "#/components/schemas/{model}"


def install(app: FastAPI, models: Sequence[type[BaseModel]] = ()) -> None:
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = tidy(generate())
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for model in models:  # bodies read by a dependency: FastAPI does not see them
                components.setdefault(model.__name__, model.model_json_schema(ref_template=REF))
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
