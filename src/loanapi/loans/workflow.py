"""The loan state machine: one table, consulted by every path that changes a loan.

Each entry says where an action takes a loan from a status, and which roles may take it there.
Services call `permit` before any change, so no path (v1, legacy, a job) can skip a rule.
"""

import enum
from typing import NamedTuple

from loanapi.errors import Conflict, Forbidden
from loanapi.loans.models import EventAction, LoanStatus
from loanapi.users.models import Role


class Action(enum.StrEnum):
    edit = "edit"
    request = "request"
    approve = "approve"
    reject = "reject"
    withdraw = "withdraw"
    rollback = "rollback"
    disburse = "disburse"
    repay = "repay"
    reverse = "reverse"  # a repayment
    write_off = "write-off"


class Step(NamedTuple):
    to: LoanStatus
    roles: frozenset[Role]


S = LoanStatus
AGENT = frozenset({Role.agent})
ADMIN = frozenset({Role.admin})
CUSTOMER = frozenset({Role.customer})
SERVICING = frozenset({Role.agent, Role.admin})

TRANSITIONS: dict[tuple[LoanStatus, Action], Step] = {
    (S.new, Action.edit): Step(S.new, AGENT),
    (S.requested, Action.edit): Step(S.requested, AGENT),
    (S.rejected, Action.edit): Step(S.new, AGENT),
    (S.new, Action.rollback): Step(S.new, AGENT),
    (S.requested, Action.rollback): Step(S.requested, AGENT),
    (S.rejected, Action.rollback): Step(S.rejected, AGENT),
    (S.new, Action.request): Step(S.requested, AGENT),
    (S.requested, Action.approve): Step(S.approved, ADMIN),
    (S.new, Action.reject): Step(S.rejected, ADMIN),
    (S.requested, Action.reject): Step(S.rejected, ADMIN),
    (S.new, Action.withdraw): Step(S.withdrawn, CUSTOMER),
    (S.requested, Action.withdraw): Step(S.withdrawn, CUSTOMER),
    (S.approved, Action.disburse): Step(S.active, ADMIN),
    # A repayment equal to the payoff closes the loan, and a reversal can reopen a closed one:
    # the replay decides (loans/servicing.py), these are the usual outcomes.
    (S.active, Action.repay): Step(S.active, SERVICING),
    (S.active, Action.reverse): Step(S.active, ADMIN),
    (S.closed, Action.reverse): Step(S.active, ADMIN),
    (S.active, Action.write_off): Step(S.written_off, ADMIN),
}

EVENT_OF: dict[Action, EventAction] = {
    Action.edit: EventAction.edited,
    Action.request: EventAction.requested,
    Action.approve: EventAction.approved,
    Action.reject: EventAction.rejected,
    Action.withdraw: EventAction.withdrawn,
    Action.rollback: EventAction.rolled_back,
    Action.disburse: EventAction.disbursed,
    Action.repay: EventAction.repaid,
    Action.reverse: EventAction.repayment_reversed,
    Action.write_off: EventAction.written_off,
}

# Changes of a requested loan's terms: only the agent who requested it may make them.
REQUESTER_ONLY = frozenset({Action.edit, Action.rollback})

_ALLOWED_FROM = {
    action: sorted(status.value for (status, a) in TRANSITIONS if a is action) for action in Action
}
_ROLES = {
    action: frozenset().union(*(step.roles for (_, a), step in TRANSITIONS.items() if a is action))
    for action in Action
}


class LoanStateConflict(Conflict):
    """The loan's status forbids the action; `loan_status` lets adapters word it their own way."""

    def __init__(self, status: LoanStatus, action: Action) -> None:
        allowed = " or ".join(_ALLOWED_FROM[action])
        super().__init__(f"Cannot {action.value} a loan that is {status.value} (only {allowed})")
        self.loan_status = status
        self.action = action


class ActionForbidden(Forbidden):
    def __init__(self, action: Action) -> None:
        roles = " or ".join(sorted(role.value for role in _ROLES[action]))
        super().__init__(f"Only the {roles} role may {action.value} a loan")


class RequestedByAnother(Conflict):
    def __init__(self, action: Action) -> None:
        super().__init__(
            f"Another agent has requested this loan: only they may {action.value} it now"
        )


def permit(
    status: LoanStatus, action: Action, *, role: Role, actor_id: int, agent_id: int | None
) -> LoanStatus:
    """The status `action` leads to, if `role` may take it from `status`; else 403 or 409."""
    if role not in _ROLES[action]:
        raise ActionForbidden(action)
    step = TRANSITIONS.get((status, action))
    if step is None:
        raise LoanStateConflict(status, action)
    if role not in step.roles:
        raise ActionForbidden(action)
    if status is S.requested and action in REQUESTER_ONLY and agent_id != actor_id:
        raise RequestedByAnother(action)
    return step.to
