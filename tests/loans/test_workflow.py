"""The state machine: its table matches API.md's rules, and every entry holds through the API."""

import asyncio
import itertools

import pytest

from loanapi.errors import Conflict, Forbidden
from loanapi.loans.models import LoanStatus
from loanapi.loans.workflow import TRANSITIONS, Action, permit
from loanapi.users.models import Role

S = LoanStatus
R = Role
# API.md's workflow rules, written out independently of the implementation: who may take each
# action from each status, and where it leads.
EXPECTED = {
    (S.new, Action.edit): (S.new, {R.agent}),
    (S.requested, Action.edit): (S.requested, {R.agent}),
    (S.rejected, Action.edit): (S.new, {R.agent}),
    (S.new, Action.rollback): (S.new, {R.agent}),
    (S.requested, Action.rollback): (S.requested, {R.agent}),
    (S.rejected, Action.rollback): (S.rejected, {R.agent}),
    (S.new, Action.request): (S.requested, {R.agent}),
    (S.requested, Action.approve): (S.approved, {R.admin}),
    (S.new, Action.reject): (S.rejected, {R.admin}),
    (S.requested, Action.reject): (S.rejected, {R.admin}),
    (S.new, Action.withdraw): (S.withdrawn, {R.customer}),
    (S.requested, Action.withdraw): (S.withdrawn, {R.customer}),
    # SERVICING.md
    (S.approved, Action.disburse): (S.active, {R.admin}),
    (S.active, Action.repay): (S.active, {R.agent, R.admin}),
    (S.active, Action.reverse): (S.active, {R.admin}),
    (S.closed, Action.reverse): (S.active, {R.admin}),
    (S.active, Action.write_off): (S.written_off, {R.admin}),
}


def test_table_is_the_contract():
    assert {key: (step.to, set(step.roles)) for key, step in TRANSITIONS.items()} == EXPECTED


@pytest.mark.parametrize(("key", "rule"), list(EXPECTED.items()), ids=str)
def test_only_the_listed_roles_may_act(key, rule):
    status, action = key
    to, roles = rule
    for role in Role:
        if role in roles:
            assert permit(status, action, role=role, actor_id=7, agent_id=7) is to
        else:
            with pytest.raises(Forbidden):
                permit(status, action, role=role, actor_id=7, agent_id=7)


def test_a_requested_loan_changes_only_by_its_agent():
    for action in (Action.edit, Action.rollback):
        assert permit(S.requested, action, role=R.agent, actor_id=7, agent_id=7) is S.requested
        with pytest.raises(Conflict, match="Another agent"):
            permit(S.requested, action, role=R.agent, actor_id=8, agent_id=7)


def test_final_states_allow_nothing():
    for status in (S.withdrawn, S.written_off):
        assert not [key for key in TRANSITIONS if key[0] is status]


async def _loan_in(client, status, customer, agent, admin):
    """A loan that has reached `status` through the API, with an edit as version 2."""
    created = await client.post(
        "/api/v1/customer/loans",
        json={"loan_type": "home_loan", "principal": "10000", "tenure_months": 12},
        headers=customer.headers,
    )
    loan_id = created.json()["id"]
    edited = await client.patch(
        f"/api/v1/agent/loans/{loan_id}", json={"principal": "15000"}, headers=agent.headers
    )
    assert edited.status_code == 200
    steps = {
        S.new: [],
        S.requested: [("agent", "request")],
        S.approved: [("agent", "request"), ("admin", "approve")],
        S.rejected: [("admin", "reject")],
        S.withdrawn: [("customer", "withdraw")],
        S.active: [("agent", "request"), ("admin", "approve"), ("admin", "disburse")],
        S.closed: [("agent", "request"), ("admin", "approve"), ("admin", "disburse")],
        S.written_off: [("agent", "request"), ("admin", "approve"), ("admin", "disburse")],
    }[status]
    callers = {"agent": agent, "admin": admin, "customer": customer}
    prefixes = {"agent": "agent", "admin": "admin", "customer": "customer"}
    for who, verb in steps:
        done = await client.post(
            f"/api/v1/{prefixes[who]}/loans/{loan_id}/{verb}", headers=callers[who].headers
        )
        assert done.status_code == 200, done.text
    if status in (S.active, S.closed, S.written_off):
        await _repay(client, loan_id, agent, "100.00")
    if status is S.closed:
        payoff = await client.get(f"/api/v1/agent/loans/{loan_id}/payoff", headers=agent.headers)
        await _repay(client, loan_id, agent, payoff.json()["total"])
    if status is S.written_off:
        written_off = await client.post(
            f"/api/v1/admin/loans/{loan_id}/write-off",
            json={"reason": "uncollectable"},
            headers=admin.headers,
        )
        assert written_off.status_code == 200, written_off.text
    return loan_id


async def _repay(client, loan_id, agent, amount):
    paid = await client.post(
        f"/api/v1/agent/loans/{loan_id}/repayments", json={"amount": amount}, headers=agent.headers
    )
    assert paid.status_code == 201, paid.text
    return paid.json()


async def _last_repayment(client, loan_id, admin):
    found = await client.get(f"/api/v1/admin/repayments?loan_id={loan_id}", headers=admin.headers)
    items = found.json()["items"]
    return items[0]["id"] if items else 1


async def _act(client, action, loan_id, customer, agent, admin):
    if action is Action.edit:
        return await client.patch(
            f"/api/v1/agent/loans/{loan_id}", json={"tenure_months": 24}, headers=agent.headers
        )
    if action is Action.rollback:
        return await client.post(
            f"/api/v1/agent/loans/{loan_id}/rollback", json={"version": 1}, headers=agent.headers
        )
    if action is Action.repay:
        return await client.post(
            f"/api/v1/agent/loans/{loan_id}/repayments",
            json={"amount": "10.00"},
            headers=agent.headers,
        )
    if action is Action.reverse:
        repayment_id = await _last_repayment(client, loan_id, admin)
        return await client.post(
            f"/api/v1/admin/loans/{loan_id}/repayments/{repayment_id}/reverse",
            json={"reason": "bounced"},
            headers=admin.headers,
        )
    if action is Action.write_off:
        return await client.post(
            f"/api/v1/admin/loans/{loan_id}/write-off",
            json={"reason": "uncollectable"},
            headers=admin.headers,
        )
    who = {
        Action.disburse: ("admin", admin),
        Action.request: ("agent", agent),
        Action.approve: ("admin", admin),
        Action.reject: ("admin", admin),
        Action.withdraw: ("customer", customer),
    }[action]
    return await client.post(
        f"/api/v1/{who[0]}/loans/{loan_id}/{action.value}", headers=who[1].headers
    )


async def test_every_status_and_action_through_the_api(client, customer, agent, admin):
    for status, action in itertools.product(LoanStatus, Action):
        loan_id = await _loan_in(client, status, customer, agent, admin)
        before = (await client.get(f"/api/v1/admin/loans/{loan_id}", headers=admin.headers)).json()
        response = await _act(client, action, loan_id, customer, agent, admin)
        expected = TRANSITIONS.get((status, action))
        case = f"{status.value} --{action.value}-->"
        if expected is not None:
            assert response.status_code in (200, 201), f"{case} {response.text}"
            after = await client.get(f"/api/v1/admin/loans/{loan_id}", headers=admin.headers)
            body = after.json()
            assert body["status"] == expected.to.value, case
            # A reversal that reopens a closed loan is two versions: repayment_reversed, reopened.
            steps = 2 if (status, action) == (S.closed, Action.reverse) else 1
            assert body["version"] == before["version"] + steps, case
        elif action is Action.reverse and status not in (S.active, S.closed, S.written_off):
            assert response.status_code == 404, f"{case} {response.text}"  # no repayment
        elif (status, action) == (S.requested, Action.request):
            # The same agent asking again: a no-op, not an error.
            assert response.status_code == 200, case
            assert response.json()["version"] == before["version"], case
        else:
            assert response.status_code == 409, f"{case} {response.text}"
            assert response.headers["content-type"] == "application/problem+json"
            after = await client.get(f"/api/v1/admin/loans/{loan_id}", headers=admin.headers)
            assert after.json() == before, f"{case} changed the loan"
        history = await client.get(f"/api/v1/admin/loans/{loan_id}/history", headers=admin.headers)
        versions = [event["version"] for event in history.json()["items"]]
        assert versions == list(range(1, len(versions) + 1)), case


async def test_another_agent_cannot_take_a_requested_loan(
    client, customer, agent, admin, new_agent
):
    loan_id = await _loan_in(client, S.requested, customer, agent, admin)
    other = await new_agent("otto")
    response = await client.post(f"/api/v1/agent/loans/{loan_id}/request", headers=other.headers)
    assert response.status_code == 409
    assert "another agent" in response.json()["detail"].lower()


@pytest.mark.parametrize("racers", [24])
async def test_concurrent_approvals_have_one_winner(client, customer, agent, admin, racers):
    loan_id = await _loan_in(client, S.requested, customer, agent, admin)
    responses = await asyncio.gather(
        *[
            client.post(f"/api/v1/admin/loans/{loan_id}/approve", headers=admin.headers)
            for _ in range(racers)
        ]
    )
    codes = sorted(r.status_code for r in responses)
    assert codes == [200] + [409] * (racers - 1), codes
    history = await client.get(f"/api/v1/admin/loans/{loan_id}/history", headers=admin.headers)
    actions = [event["action"] for event in history.json()["items"]]
    assert actions.count("approved") == 1
    assert [e["version"] for e in history.json()["items"]] == list(range(1, len(actions) + 1))


async def test_concurrent_if_match_edits_have_one_winner(client, customer, agent, admin):
    loan_id = await _loan_in(client, S.new, customer, agent, admin)
    responses = await asyncio.gather(
        *[
            client.patch(
                f"/api/v1/agent/loans/{loan_id}",
                json={"principal": str(20000 + i)},
                headers={**agent.headers, "If-Match": '"2"'},
            )
            for i in range(16)
        ]
    )
    codes = sorted(r.status_code for r in responses)
    assert codes == [200] + [412] * 15, codes
    winner = next(r.json() for r in responses if r.status_code == 200)
    current = await client.get(f"/api/v1/admin/loans/{loan_id}", headers=admin.headers)
    assert current.json()["principal"] == winner["principal"]
    assert current.json()["version"] == 3


async def test_concurrent_edits_without_if_match_lose_nothing(client, customer, agent, admin):
    """Without If-Match a loser gets 409, never a silently overwritten or missing event."""
    loan_id = await _loan_in(client, S.new, customer, agent, admin)
    responses = await asyncio.gather(
        *[
            client.patch(
                f"/api/v1/agent/loans/{loan_id}",
                json={"principal": str(30000 + i)},
                headers=agent.headers,
            )
            for i in range(12)
        ]
    )
    wins = [r for r in responses if r.status_code == 200]
    assert all(r.status_code in (200, 409) for r in responses)
    history = await client.get(f"/api/v1/admin/loans/{loan_id}/history", headers=admin.headers)
    events = history.json()["items"]
    assert len(events) == 2 + len(wins)
    assert [e["version"] for e in events] == list(range(1, len(events) + 1))


async def test_another_agent_cannot_change_a_requested_loan(
    client, customer, agent, admin, new_agent
):
    loan_id = await _loan_in(client, S.requested, customer, agent, admin)
    other = await new_agent("otto")
    before = (await client.get(f"/api/v1/admin/loans/{loan_id}", headers=admin.headers)).json()
    edit = await client.patch(
        f"/api/v1/agent/loans/{loan_id}", json={"tenure_months": 36}, headers=other.headers
    )
    rollback = await client.post(
        f"/api/v1/agent/loans/{loan_id}/rollback", json={"version": 1}, headers=other.headers
    )
    for response in (edit, rollback):
        assert response.status_code == 409, response.text
        assert "another agent has requested this loan" in response.json()["detail"].lower()
    after = (await client.get(f"/api/v1/admin/loans/{loan_id}", headers=admin.headers)).json()
    assert after == before
    legacy = await client.post(
        f"/edit_loan/{loan_id}", json={"duration": 36}, headers=other.headers
    )
    assert legacy.status_code == 409
    mine = await client.patch(
        f"/api/v1/agent/loans/{loan_id}", json={"tenure_months": 36}, headers=agent.headers
    )
    assert mine.status_code == 200, mine.text
