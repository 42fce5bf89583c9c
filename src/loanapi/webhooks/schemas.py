"""Events, webhook endpoints and deliveries as the API shows them (EVENTS.md)."""

from datetime import datetime
from typing import Annotated, Any, cast

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter
from pydantic.config import JsonDict

from loanapi.users.schemas import PLAIN_TEXT
from loanapi.webhooks.models import EVENT_TYPES, DeliveryStatus, event_id

LOAN_EXAMPLE: Any = {"id": 42, "status": "approved", "version": 4, "principal": "12000.00"}


class EventRead(BaseModel):
    """One integration event: a webhook delivery's body, and an item of the feed."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "evt_1042",
                    "type": "loan.approved",
                    "occurred_at": "2026-11-30T09:15:02.118000Z",
                    "data": {"loan": LOAN_EXAMPLE, "version": 4, "actor_id": 1},
                }
            ]
        }
    )

    id: str
    type: str
    occurred_at: datetime
    data: dict[str, Any]


class EventPage(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": EventRead.model_config["json_schema_extra"]["examples"],  # type: ignore[index]
                    "next_cursor": "MTIzNDUuMTA0Mg",
                }
            ]
        }
    )

    items: list[EventRead]
    next_cursor: str = Field(
        description="Where to ask from next time (`after`); never null: at the end of the feed, "
        "the position after the last event, or the same `after` when nothing new arrived"
    )


def event_read(row: Any) -> EventRead:
    return EventRead(
        id=event_id(row["id"]), type=row["type"], occurred_at=row["occurred_at"], data=row["data"]
    )


_TEXT = TypeAdapter(str)
_MOMENT = TypeAdapter(datetime)


def event_body(row: Any) -> bytes:
    """The body of a delivery: the event as the feed lists it, with `data` as stored (`row`'s
    `data` is the column's JSON text: spliced in, not parsed and written again)."""
    return b'{"id":%s,"type":%s,"occurred_at":%s,"data":%s}' % (
        _TEXT.dump_json(event_id(row["id"])),
        _TEXT.dump_json(row["type"]),
        _MOMENT.dump_json(row["occurred_at"]),
        row["data"].encode(),
    )


def _known_types(types: list[str]) -> list[str]:
    if types == ["*"]:
        return types
    unknown = sorted(set(types) - set(EVENT_TYPES))
    if "*" in types:
        raise ValueError('"*" stands alone: every event type')
    if unknown:
        raise ValueError(
            f"unknown event types: {', '.join(unknown)}; known: {', '.join(EVENT_TYPES)}"
        )
    return list(dict.fromkeys(types))


EventTypes = Annotated[
    list[Annotated[str, Field(max_length=40)]],
    Field(min_length=1, max_length=len(EVENT_TYPES)),
    AfterValidator(_known_types),
]
Url = Annotated[str, Field(min_length=1, max_length=2048, pattern=PLAIN_TEXT)]
Description = Annotated[str | None, Field(max_length=500, pattern=PLAIN_TEXT)]


class WebhookCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "url": "https://ledger.example.com/hooks/loanapi",
                    "event_types": ["loan.approved", "loan.disbursed", "loan.repaid"],
                    "description": "core ledger",
                }
            ]
        },
    )

    url: Url
    event_types: EventTypes
    description: Description = None


class WebhookUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"active": False}]})

    url: Url | None = None
    event_types: EventTypes | None = None
    description: Description = None
    active: bool | None = None


WEBHOOK_EXAMPLE: dict[str, Any] = {
    "id": 3,
    "url": "https://crm.example.com/hooks/loanapi",
    "event_types": ["loan.approved", "loan.disbursed", "repayment.posted"],
    "description": "CRM: approvals and money",
    "active": True,
    "created_at": "2026-11-30T09:20:11.004000Z",
}
SECRET_EXAMPLE = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


class WebhookRead(BaseModel):
    model_config = ConfigDict(
        from_attributes=True, json_schema_extra={"examples": [cast(JsonDict, WEBHOOK_EXAMPLE)]}
    )

    id: int
    url: str
    event_types: list[str]
    description: str | None
    active: bool
    created_at: datetime


class WebhookWithSecret(WebhookRead):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [cast(JsonDict, {**WEBHOOK_EXAMPLE, "secret": SECRET_EXAMPLE})]
        }
    )

    secret: str = Field(
        description="`whsec_` + base64: the signing key, shown only when created or rotated"
    )


class WebhookPage(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [cast(JsonDict, {"items": [WEBHOOK_EXAMPLE], "next_cursor": None})]
        }
    )

    items: list[WebhookRead]
    next_cursor: str | None = None


DELIVERY_EXAMPLE: dict[str, Any] = {
    "id": 981,
    "event_id": "evt_1042",
    "event_type": "loan.approved",
    "status": "pending",
    "attempts": 2,
    "last_status_code": 503,
    "last_error": None,
    "next_attempt_at": "2026-11-30T09:21:17.000000Z",
    "delivered_at": None,
}


class DeliveryRead(BaseModel):
    model_config = ConfigDict(
        from_attributes=True, json_schema_extra={"examples": [cast(JsonDict, DELIVERY_EXAMPLE)]}
    )

    id: int
    event_id: str
    event_type: str
    status: DeliveryStatus
    attempts: int
    last_status_code: int | None
    last_error: str | None
    next_attempt_at: datetime | None
    delivered_at: datetime | None


class DeliveryPage(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [cast(JsonDict, {"items": [DELIVERY_EXAMPLE], "next_cursor": None})]
        }
    )

    items: list[DeliveryRead]
    next_cursor: str | None = None
