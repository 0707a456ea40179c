"""One execution, one step of a ladder (docs/scale.md, "One execution, one step").

An execution has two states: it waits until its step's moment (`at`), then one function takes the step:
decide (escalation.decide_step: claim the ladder, log what the ladder logs), do what is due now, and decide
again, until the ladder is done, asleep in the wake index until after the next scan, or has something to do
later today. That later something is a successor execution, started here, which waits for it in Step
Functions. A state transition is what Step Functions charges for, so a day with one notice costs two.

Two functions take steps, each doing what its role allows: send_notice sends notices, escalate hands
ladders to the legal team. A step that needs the other one starts the successor on it (the state machine
gives each step both functions' ARNs). The daily scan starts every waking ladder on send_notice's step.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from dunning.domain.clock import Clock
from dunning.domain.policy import Policy
from dunning.ports import Books, Workflows
from dunning.services import escalation
from dunning.services.escalation import StepRequest, successor_name
from dunning.services.executions import step_input
from dunning.services.sending import SEND_TOLERANCE, SendRequest

# What one step does at most before a fresh execution carries on (a ladder that kept finding something to
# do now: each send or decision is logged, so nothing is lost by handing over).
STEPS_AT_ONCE = 8
SEND = "send"
HANDOFF = "handoff"


@dataclass(frozen=True)
class Successors:
    """Starts the execution that carries a ladder on: `functions` maps what it does next (SEND, HANDOFF)
    to the function that can (their alias ARNs, from the state machine's definition)."""

    workflows: Workflows
    functions: Mapping[str, str]

    def start(self, books: Books, request: StepRequest, at: datetime, does: str) -> str:
        name = successor_name(request.execution)
        # The ladder is the successor's before it exists: its step claims what this one held.
        books.ladders.pass_on(request.account_id, request.currency, request.execution, name)
        self.workflows.start(name, step_input(request.account_id, request.currency, at, self.functions[does]))
        return name

    def lost(self, books: Books, request: StepRequest, now: datetime) -> str | None:
        """A retried step whose first attempt gave the ladder to its successor and died before starting it:
        start it now (its step decides what is due). None when the ladder is not its successor's; a
        successor already started is not started twice (its name is taken)."""
        name = successor_name(request.execution)
        if books.ladders.load(request.account_id, request.currency).state.owner != name:
            return None
        payload = step_input(request.account_id, request.currency, now, self.functions[SEND])
        self.workflows.start(name, payload)
        return name


@dataclass(frozen=True)
class Abilities:
    """What the function taking the step can do itself (None: it cannot, a successor on the other does)."""

    send: Callable[[SendRequest], dict[str, Any]] | None = None
    hand_off: Callable[[StepRequest], dict[str, Any]] | None = None

    def can(self, does: str) -> bool:
        return (self.send if does == SEND else self.hand_off) is not None


def take_step(
    books: Books,
    policy: Policy,
    clock: Clock,
    request: StepRequest,
    abilities: Abilities,
    successors: Successors,
) -> dict[str, Any]:
    """Walk the ladder as far as it goes now; the answer says where it stopped (the last decision, and the
    successor execution, if one carries on)."""
    outcomes: list[dict[str, Any]] = []
    for _ in range(STEPS_AT_ONCE):
        decision = escalation.decide_step(books, policy, clock, request)["decision"]
        if decision == {"action": "done", "reason": "owned_by_another_execution"}:
            lost = successors.lost(books, request, clock.now())
            return {"decision": decision, "outcomes": outcomes} | ({"successor": lost} if lost else {})
        if decision["action"] == "done":
            return {"decision": decision, "outcomes": outcomes}
        at = datetime.fromisoformat(decision["at"])
        does = HANDOFF if decision.get("next") == HANDOFF else SEND
        # Due now: within the tolerance a send allows (a decision taken at its own moment rounds up to the
        # next whole minute).
        if at > clock.now() + SEND_TOLERANCE or not abilities.can(does):
            successor = successors.start(books, request, at, does)
            return {"decision": decision, "outcomes": outcomes, "successor": successor}
        if decision["next"] == SEND:
            assert abilities.send is not None
            sending = SendRequest(
                request.account_id,
                decision["episode"],
                decision["stage"],
                request.execution,
                request.currency,
            )
            outcomes.append(abilities.send(sending))
        elif decision["next"] == HANDOFF:
            assert abilities.hand_off is not None
            outcome = abilities.hand_off(request)
            outcomes.append(outcome)
            if outcome.get("handed_off"):
                # The ladder's last step: an email the legal team did not get is the next scan's to retry.
                return {"decision": decision, "outcomes": outcomes}
        # Then decide again: after a send, or when an upload changed the ladder while this step decided.
    successor = successors.start(books, request, clock.now().astimezone(UTC), SEND)
    return {
        "decision": {"action": "continue", "reason": "steps_at_once"},
        "outcomes": outcomes,
        "successor": successor,
    }
