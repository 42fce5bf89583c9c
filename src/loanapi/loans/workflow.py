"""The loan state machine: one table, consulted by every path that changes a loan."""

import enum

from loanapi.errors import Conflict
from loanapi.loans.models import EventAction, LoanStatus


class Action(enum.StrEnum):
    edit = "edit"
    request = "request"
    approve = "approve"
    reject = "reject"
    withdraw = "withdraw"
    rollback = "rollback"


S = LoanStatus
TRANSITIONS: dict[tuple[LoanStatus, Action], LoanStatus] = {
    (S.new, Action.edit): S.new,
    (S.requested, Action.edit): S.requested,
    (S.rejected, Action.edit): S.new,
    (S.new, Action.rollback): S.new,
    (S.requested, Action.rollback): S.requested,
    (S.rejected, Action.rollback): S.rejected,
    (S.new, Action.request): S.requested,
    (S.requested, Action.approve): S.approved,
    (S.new, Action.reject): S.rejected,
    (S.requested, Action.reject): S.rejected,
    (S.new, Action.withdraw): S.withdrawn,
    (S.requested, Action.withdraw): S.withdrawn,
}

EVENT_OF: dict[Action, EventAction] = {
    Action.edit: EventAction.edited,
    Action.request: EventAction.requested,
    Action.approve: EventAction.approved,
    Action.reject: EventAction.rejected,
    Action.withdraw: EventAction.withdrawn,
    Action.rollback: EventAction.rolled_back,
}

_ALLOWED_FROM = {
    action: sorted(status.value for (status, a) in TRANSITIONS if a is action) for action in Action
}


class LoanStateConflict(Conflict):
    """The loan's status forbids the action; `loan_status` lets adapters word it their own way."""

    def __init__(self, status: LoanStatus, action: Action) -> None:
        allowed = " or ".join(_ALLOWED_FROM[action])
        super().__init__(f"Cannot {action.value} a loan that is {status.value} (only {allowed})")
        self.loan_status = status
        self.action = action


def next_status(status: LoanStatus, action: Action) -> LoanStatus:
    try:
        return TRANSITIONS[(status, action)]
    except KeyError:
        raise LoanStateConflict(status, action) from None
