"""The OpenAPI document: valid, with stable names, examples and problem+json errors."""

import re
import secrets

import pytest
from openapi_spec_validator import validate

from loanapi.app import create_app
from loanapi.config import Settings


@pytest.fixture(scope="module")
def document():
    app = create_app(Settings(secret_key=secrets.token_urlsafe(48), _env_file=None))
    return app.openapi()


def operations(document):
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            yield path, method, operation


def test_the_document_is_valid_openapi(document):
    validate(document)


def test_operation_ids_are_unique_readable_names(document):
    ids = [operation["operationId"] for _, _, operation in operations(document)]
    assert len(ids) == len(set(ids))
    assert all(re.fullmatch(r"[a-z]+(_[a-z0-9]+)+", name) for name in ids), ids
    assert "customer_apply_loan" in ids


def test_every_tag_is_described_and_used(document):
    described = {tag["name"]: tag.get("description") for tag in document["tags"]}
    assert all(described.values())
    used = {tag for _, _, operation in operations(document) for tag in operation["tags"]}
    assert used == set(described)


def test_v1_errors_are_problem_details(document):
    checked = 0
    for path, _, operation in operations(document):
        legacy = "legacy" in operation["tags"]
        for status, response in operation["responses"].items():
            if int(status) < 400:
                continue
            if legacy and path == "/login" and status == "401":  # the original's plain text
                assert list(response["content"]) == ["text/html"], (path, status)
            elif legacy:  # the original's {"Message": ...} shapes
                assert "application/json" in response["content"], (path, status)
            else:
                assert list(response["content"]) == ["application/problem+json"], (path, status)
            checked += 1
    assert checked > 100


def test_protected_v1_routes_document_401_and_403(document):
    for path, _, operation in operations(document):
        # the two a caller may use before choosing a password after an admin's reset
        any_role = path in {"/api/v1/auth/logout", "/api/v1/auth/password"}
        if path.startswith("/api/v1/") and operation.get("security") and not any_role:
            assert {"401", "403"} <= set(operation["responses"]), path


def test_request_bodies_have_examples(document):
    schemas = document["components"]["schemas"]
    for path, _, operation in operations(document):
        body = operation.get("requestBody", {}).get("content", {})
        for media, content in body.items():
            if media == "application/x-www-form-urlencoded":
                continue  # the OAuth2 password form: Swagger shows its two fields
            schema = content["schema"]
            refs = [schema.get("$ref")] + [option.get("$ref") for option in schema.get("anyOf", [])]
            names = [ref.rsplit("/", 1)[-1] for ref in refs if ref]
            assert names, f"{path}: the body has no named model"
            for name in names:
                assert schemas[name].get("examples"), f"{path}: {name} has no example"


def test_swagger_authorize_logs_in_through_the_token_endpoint(document):
    scheme = document["components"]["securitySchemes"]["OAuth2PasswordBearer"]
    assert scheme["flows"]["password"]["tokenUrl"] == "/api/v1/auth/token"


def test_legacy_routes_are_deprecated(document):
    legacy = [op for _, _, op in operations(document) if "legacy" in op["tags"]]
    assert len(legacy) >= 19
    assert all(op.get("deprecated") for op in legacy)


def test_every_v1_error_has_an_example_of_its_status(document):
    for path, method, operation in operations(document):
        if not path.startswith("/api/v1/"):
            continue
        for status, response in operation["responses"].items():
            if status[0] in "45":
                example = response["content"]["application/problem+json"]["example"]
                assert example["status"] == int(status), (method, path, status)
                assert example["detail"], (method, path, status)
                assert set(example) >= {"type", "title", "status", "detail"}


def test_every_v1_json_answer_has_an_example_with_real_values(document):
    schemas = document["components"]["schemas"]

    def example_of(schema):
        if "$ref" in schema:
            found = schemas[schema["$ref"].rsplit("/", 1)[-1]].get("examples")
            return found[0] if found else None
        if schema.get("type") == "array":
            item = example_of(schema["items"])
            return [item] if item is not None else None
        return None

    for path, method, operation in operations(document):
        if not path.startswith("/api/v1/"):
            continue
        for status, response in operation["responses"].items():
            content = response.get("content", {}).get("application/json")
            if not status.startswith("2") or content is None:
                continue
            example = content.get("example") or example_of(content["schema"])
            assert example, (method, path, status)
            assert '"string"' not in str(example).replace("'", '"'), (method, path)


def test_authorize_says_which_scheme_to_use_first(document):
    schemes = document["components"]["securitySchemes"]
    assert list(schemes)[0] == "OAuth2PasswordBearer"  # the first form of the dialog
    assert schemes["OAuth2PasswordBearer"]["description"].startswith("Start here")
    for legacy in ("LegacyBasic", "APIKeyHeader"):
        assert schemes[legacy]["description"].startswith("Legacy endpoints only")
    assert "Only for POST /api/v1/auth/login" in schemes["Basic"]["description"]
    tags = {tag["name"]: tag["description"] for tag in document["tags"]}
    assert "Authorize" in tags["auth"]
    assert "LegacyBasic" in tags["legacy"]
    assert "x-access-token" in tags["legacy"]


def test_every_operation_is_described_beyond_its_summary(document):
    for path, method, operation in operations(document):
        description = operation.get("description", "")
        assert len(description) > 40, (method, path)
        assert description != operation["summary"], (method, path)


def test_parameters_have_plain_types_and_say_what_they_do(document):
    for path, method, operation in operations(document):
        for parameter in operation.get("parameters", []):
            schema = parameter["schema"]
            where = (method, path, parameter["name"])
            assert "anyOf" not in schema, where  # Swagger UI would show no type
            assert "$ref" in schema or schema.get("type") in {"string", "integer", "boolean"}
            assert parameter.get("description"), where
