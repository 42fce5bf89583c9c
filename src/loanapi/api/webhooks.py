"""The admin's event feed and webhook endpoints (EVENTS.md)."""

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from pydantic import Field

from loanapi.api.common import model_response
from loanapi.api.deps import (
    V1,
    AdminUser,
    Cursor,
    Limit,
    PageDep,
    ReadSessionDep,
    SettingsDep,
    WriteSessionDep,
)
from loanapi.api.idempotency import IdempotentRoute
from loanapi.errors import problem_responses
from loanapi.orm import MAX_ID
from loanapi.pagination import DEFAULT_LIMIT, make_page
from loanapi.webhooks import feed
from loanapi.webhooks import service as webhooks
from loanapi.webhooks.delivery import policy
from loanapi.webhooks.models import EVENT_TYPES, DeliveryStatus
from loanapi.webhooks.schemas import (
    DeliveryPage,
    DeliveryRead,
    EventPage,
    WebhookCreate,
    WebhookPage,
    WebhookRead,
    WebhookUpdate,
    WebhookWithSecret,
    event_read,
)

# Every POST takes an Idempotency-Key (API.md); the same key with another request is a 409.
REUSED_KEY = {409: "This Idempotency-Key was used for another request"}

router = APIRouter(
    route_class=IdempotentRoute,
    prefix=f"{V1}/admin",
    tags=["events and webhooks"],
    responses=problem_responses(401, 403, 422),
)

EndpointId = Annotated[int, Path(ge=1, le=MAX_ID, description="A webhook endpoint's id")]
DeliveryId = Annotated[int, Path(ge=1, le=MAX_ID, description="A delivery's id")]
EventType = Annotated[
    str | None,
    Field(max_length=40, description=f"Only this type: {', '.join(EVENT_TYPES)}"),
]


@router.get(
    "/events",
    response_model=EventPage,
    operation_id="admin_list_events",
    summary="The event feed, oldest first",
    description="Every change's integration event. Store `next_cursor` and ask again with "
    "`after=` it: the feed never skips an event (also one whose transaction committed late) "
    "and never repeats one. `next_cursor` is never null.",
)
async def list_events(
    admin: AdminUser,
    session: ReadSessionDep,
    type: Annotated[EventType, Query()] = None,  # noqa: A002 (the contract's name)
    loan_id: Annotated[int | None, Query(ge=1, le=MAX_ID, description="Of this loan")] = None,
    after: Annotated[Cursor, Query(description="`next_cursor` of an earlier answer")] = None,
    limit: Annotated[Limit, Query()] = DEFAULT_LIMIT,
) -> Response:
    position = feed.decode_position(after) if after is not None else feed.START
    page = await feed.list_events(session, after=position, limit=limit, type_=type, loan_id=loan_id)
    body = EventPage(
        items=[event_read(row) for row in page.items],
        next_cursor=feed.encode_position(page.next_position),
    )
    return model_response(body)


@router.post(
    "/webhooks",
    status_code=201,
    response_model=WebhookWithSecret,
    operation_id="admin_create_webhook",
    summary="Add a webhook endpoint (its secret is shown only in this answer)",
    description="The URL must be https on a public address (loopback, private, link-local and "
    "cloud metadata addresses are refused, now and again at every delivery); a host name that "
    'does not resolve yet is accepted. `event_types`: the types to receive, or `["*"]`.',
    responses=problem_responses(notes=REUSED_KEY),
)
async def create_webhook(
    admin: AdminUser, session: WriteSessionDep, settings: SettingsDep, data: WebhookCreate
) -> Response:
    endpoint = await webhooks.create(session, data=data, policy=policy(settings))
    where = {"Location": f"{V1}/admin/webhooks/{endpoint.id}"}
    return model_response(WebhookWithSecret.model_validate(endpoint), 201, where)


@router.get(
    "/webhooks/{endpoint_id}",
    response_model=WebhookRead,
    operation_id="admin_get_webhook",
    summary="One webhook endpoint (no secret)",
    description="The signing secret is shown only when the endpoint is created or its secret "
    "rotated; to replace a lost one, use "
    "`POST /api/v1/admin/webhooks/{endpoint_id}/rotate-secret`. `active: false` means paused by an "
    "admin, or disabled after the URL answered 410 Gone.",
    responses=problem_responses(404),
)
async def get_webhook(
    admin: AdminUser, session: ReadSessionDep, endpoint_id: EndpointId
) -> Response:
    return model_response(
        WebhookRead.model_validate(await webhooks.get(session, endpoint_id=endpoint_id))
    )


@router.get(
    "/webhooks",
    response_model=WebhookPage,
    operation_id="admin_list_webhooks",
    summary="Every webhook endpoint (no secrets)",
    description="All endpoints in one page, oldest (lowest `id`) first; `next_cursor` is always "
    "null. `active: false` marks an endpoint paused by an admin or disabled after its URL answered "
    "410 Gone: it receives no new events.",
)
async def list_webhooks(admin: AdminUser, session: ReadSessionDep) -> Response:
    endpoints = await webhooks.list_endpoints(session)
    return model_response(WebhookPage(items=[WebhookRead.model_validate(e) for e in endpoints]))


@router.patch(
    "/webhooks/{endpoint_id}",
    response_model=WebhookRead,
    operation_id="admin_update_webhook",
    summary="Change an endpoint's URL, event types, description, or pause it",
    description="Send only the fields to change; `url`, `event_types` and `active` may not be null "
    "(422), a null `description` clears it. A changed `url` is checked as on creation: https only, "
    "loopback, private and link-local addresses refused unless `LOANAPI_WEBHOOK_ALLOW_HTTP` / "
    "`LOANAPI_WEBHOOK_ALLOW_PRIVATE` allow them, cloud metadata addresses whatever the settings. "
    "While `active` is false, new events are not queued for the endpoint and its pending "
    "deliveries wait; `true` resumes them, also after a 410 Gone disabled it.",
    responses=problem_responses(404),
)
async def update_webhook(
    admin: AdminUser,
    session: WriteSessionDep,
    settings: SettingsDep,
    endpoint_id: EndpointId,
    data: WebhookUpdate,
) -> Response:
    endpoint = await webhooks.change(
        session, endpoint_id=endpoint_id, data=data, policy=policy(settings)
    )
    return model_response(WebhookRead.model_validate(endpoint))


@router.delete(
    "/webhooks/{endpoint_id}",
    status_code=204,
    operation_id="admin_delete_webhook",
    summary="Remove an endpoint and its deliveries",
    description="Its pending deliveries are dropped (an attempt already under way may still "
    "arrive); the events themselves stay in the feed (`GET /api/v1/admin/events`). To stop "
    "deliveries but keep the endpoint and its delivery log, set `active` to false with `PATCH` "
    "instead.",
    responses=problem_responses(404),
)
async def delete_webhook(
    admin: AdminUser, session: WriteSessionDep, endpoint_id: EndpointId
) -> Response:
    await webhooks.remove(session, endpoint_id=endpoint_id)
    return Response(status_code=204)


@router.post(
    "/webhooks/{endpoint_id}/rotate-secret",
    response_model=WebhookWithSecret,
    operation_id="admin_rotate_webhook_secret",
    summary="A new signing secret; the old one still signs, beside it, for 24 hours",
    description="This answer is the only place the new `secret` is shown. Until the 24 hours are "
    "over, each delivery's `webhook-signature` carries both signatures, space-separated, so a "
    "consumer can switch to the new secret at its own pace; rotating again meanwhile keeps only "
    "the secret just replaced.",
    responses=problem_responses(404, notes=REUSED_KEY),
)
async def rotate_secret(
    admin: AdminUser, session: WriteSessionDep, endpoint_id: EndpointId
) -> Response:
    endpoint = await webhooks.rotate_secret(session, endpoint_id=endpoint_id)
    return model_response(WebhookWithSecret.model_validate(endpoint))


@router.get(
    "/webhooks/{endpoint_id}/deliveries",
    response_model=DeliveryPage,
    operation_id="admin_list_webhook_deliveries",
    summary="An endpoint's deliveries, newest first",
    description="One delivery per event the endpoint received, listed from when the worker takes "
    "the event up (its first attempt, a moment after the change, or later while the endpoint has "
    "its share of attempts in flight; events still to take up count in the "
    "`loanapi_webhook_queue_depth` metric): `pending` (next attempt at `next_attempt_at`), "
    "`delivered` (a 2xx answer within 10 s) or `failed` (after 8 attempts, or at once on 410 "
    "Gone). `attempts`, `last_status_code` and `last_error` describe the attempts so far; "
    "`status` filters the list.",
    responses=problem_responses(404),
)
async def list_deliveries(
    admin: AdminUser,
    session: ReadSessionDep,
    endpoint_id: EndpointId,
    page: PageDep,
    status: Annotated[DeliveryStatus | None, Query(description="Deliveries in this status")] = None,
) -> Response:
    rows = await webhooks.list_deliveries(
        session, endpoint_id=endpoint_id, status=status, page=page
    )
    result = make_page(rows, page, DeliveryRead)
    return model_response(DeliveryPage(items=result.items, next_cursor=result.next_cursor))


@router.post(
    "/webhooks/{endpoint_id}/deliveries/{delivery_id}/retry",
    status_code=202,
    response_model=DeliveryRead,
    operation_id="admin_retry_webhook_delivery",
    summary="Attempt a delivery again now (its attempts keep counting)",
    description="Any delivery, `delivered` and `failed` ones too, goes back to `pending` with "
    "`next_attempt_at` now; a worker sends it shortly after, signed afresh, so follow its outcome "
    "in the delivery list. A delivery that had used up its 8 attempts gets only this one more. "
    "While the endpoint is paused (`active: false`), the delivery waits.",
    responses=problem_responses(404, notes=REUSED_KEY),
)
async def retry_delivery(
    admin: AdminUser, session: WriteSessionDep, endpoint_id: EndpointId, delivery_id: DeliveryId
) -> Response:
    delivery = await webhooks.retry(session, endpoint_id=endpoint_id, delivery_id=delivery_id)
    return model_response(DeliveryRead.model_validate(delivery), 202)
