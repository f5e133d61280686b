"""The per-endpoint upload queue (issue 12 §4): uploads take the endpoint lock in the order S3 received them.

One item per endpoint in the lock table, `queue#<endpoint>`: `tickets` (a JSON list, one ticket per waiting or
deploying execution), `last_started` (the ticket that last took its turn), `version` (optimistic concurrency:
every change is a conditional put on the version read, retried on a conflict) and `expires_at` (TTL).

Order. AWS (S3 User Guide, "Event message structure", notification-content-structure): "The `sequencer` key value
provides a way to determine the sequence of events. Event notifications aren't guaranteed to arrive in the same
order that the events occurred. [...] You can use this value to determine the order of events for a given object
key"; "You can't use the `sequencer` key value to determine the order for events on different object keys"; "The
`sequencer` strings can be of different lengths. So, to compare these values, first left-pad the shorter value
with zeros, and then do a lexicographical comparison." The EventBridge envelope's `time` is "The time the event
occurred" (S3 User Guide, "EventBridge event message structure"; second precision). So: across keys, the event
time; within one second the padded sequencer and then the event id break the tie (AWS promises nothing there: an
arbitrary but stable order); tickets of one key take the places those tickets hold in sequencer order. Nor is
delivery ordered or exactly once (S3 events are "durable": delivered at least once, retried up to 24 hours,
EventBridge User Guide "Event delivery from AWS services"): a late event older than the upload that last took its
turn is superseded, never deployed after it, and a redelivered event is a DUPLICATE.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any, TypeVar

from functions.adapters import dynamodb
from functions.errors import Throttled

T = TypeVar("T")
CAS_ATTEMPTS = 8  # conditional writes lost to another execution before giving up (Throttled: retried by the ASL)


def queue_key(endpoint: str) -> str:
    return f"queue#{endpoint}"


def padded(sequencer: str | None) -> str:
    """A sequencer comparable as text: upper-case hex, left-padded with zeros (AWS's rule)."""
    return (sequencer or "").upper().rjust(64, "0")


def _epoch(when: str | None, fallback: int) -> float:
    if when:
        try:
            return datetime.fromisoformat(when.replace("Z", "+00:00")).timestamp()
        except ValueError:
            pass
    return float(fallback)


@dataclass(frozen=True)
class Ticket:
    execution: str
    key: str  # the S3 object key
    idempotency_key: str  # upload#<bucket>/<key>#<version>: one object version
    event_time: str | None = None
    sequencer: str | None = None
    event_id: str | None = None
    enqueued_at: int = 0
    expires_at: int = 0
    supersede: bool = False  # this (newer) upload supersedes older waiting ones
    execution_arn: str | None = None

    def sort_key(self) -> tuple[float, str, str, str]:
        return (_epoch(self.event_time, self.enqueued_at), padded(self.sequencer), self.event_id or "", self.execution)

    def summary(self) -> dict[str, Any]:
        return {"execution": self.execution, "key": self.key, "event_time": self.event_time}

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> Ticket:
        return cls(**{k: raw[k] for k in cls.__dataclass_fields__ if k in raw})


def ordered(tickets: list[Ticket]) -> list[Ticket]:
    """The queue's order: by event time across keys; one key's tickets by their sequencers within their places."""
    out = sorted(tickets, key=Ticket.sort_key)
    by_key: dict[str, list[int]] = {}
    for i, t in enumerate(out):
        by_key.setdefault(t.key, []).append(i)
    for places in by_key.values():
        if len(places) > 1 and all(out[i].sequencer for i in places):
            same = sorted((out[i] for i in places), key=lambda t: (padded(t.sequencer), t.sort_key()))
            for i, t in zip(places, same, strict=True):
                out[i] = t
    return out


def strictly_before(a: Ticket, b: Ticket) -> bool:
    """Whether S3 says upload `a` came before `b`: a smaller sequencer on the same key, else an earlier event time.
    Two keys in the same second have no order (the queue's tie-break is not evidence)."""
    if a.key == b.key and a.sequencer and b.sequencer:
        return padded(a.sequencer) < padded(b.sequencer)
    return _epoch(a.event_time, a.enqueued_at) < _epoch(b.event_time, b.enqueued_at)


@dataclass
class Queue:
    tickets: list[Ticket] = field(default_factory=list)
    last_started: Ticket | None = None
    version: int = 0
    exists: bool = False

    def find(self, execution: str) -> Ticket | None:
        return next((t for t in self.tickets if t.execution == execution), None)

    def drop(self, execution: str) -> bool:
        before = len(self.tickets)
        self.tickets = [t for t in self.tickets if t.execution != execution]
        return len(self.tickets) != before


def load(table: str, endpoint: str) -> Queue:
    item = dynamodb.get(table, queue_key(endpoint))
    if not item:
        return Queue()
    last = json.loads(str(item.get("last_started") or "null"))
    return Queue(
        tickets=[Ticket.parse(t) for t in json.loads(str(item.get("tickets") or "[]"))],
        last_started=Ticket.parse(last) if last else None,
        version=int(item.get("version") or 0),
        exists=True,
    )


def _save(table: str, endpoint: str, queue: Queue, expires_at: int) -> bool:
    item: dict[str, str | int | float] = {
        "pk": queue_key(endpoint),
        "tickets": json.dumps([asdict(t) for t in ordered(queue.tickets)], separators=(",", ":")),
        "last_started": json.dumps(asdict(queue.last_started) if queue.last_started else None),
        "version": queue.version + 1,
        "expires_at": expires_at,
    }
    if queue.exists:
        return dynamodb.put_if(table, item, "version = :v", {":v": queue.version})
    return dynamodb.put_if(table, item, "attribute_not_exists(pk) OR version = :v", {":v": queue.version})


def update(table: str, endpoint: str, change: Callable[[Queue], tuple[T, bool]], expires_at: int) -> T:
    """Read the queue, apply `change` (returns its result and whether the queue changed), write it back only if
    nobody wrote in between; otherwise read again and redo the change."""
    for _ in range(CAS_ATTEMPTS):
        queue = load(table, endpoint)
        result, changed = change(queue)
        if not changed or _save(table, endpoint, queue, expires_at):
            return result
    raise Throttled(f"the upload queue of {endpoint} changed {CAS_ATTEMPTS} times while being updated")


def remove(table: str, endpoint: str, execution: str, expires_at: int) -> bool:
    """Take an execution's ticket out of the queue (safe to repeat); True when it was there."""

    def change(queue: Queue) -> tuple[bool, bool]:
        dropped = queue.drop(execution)
        return dropped, dropped

    return update(table, endpoint, change, expires_at)


@dataclass(frozen=True)
class Turn:
    """What the queue says to an execution that asks for its turn."""

    state: str  # TURN (take the lock) | QUEUED | SUPERSEDED
    position: int = 0  # tickets ahead
    head: Ticket | None = None  # the ticket at the head (QUEUED)
    by: Ticket | None = None  # SUPERSEDED: the newer upload
    why: str = ""
    dropped: tuple[str, ...] = ()  # executions taken out because they had ended (or their tickets expired)


def take_turn(table: str, endpoint: str, mine: Ticket, now: int, alive: Callable[[Ticket], bool], expires_at: int) -> Turn:
    """Enqueue `mine` (once: a retry keeps its place), then say whether it is its turn. Tickets whose execution
    has ended, or whose TTL has passed, are dropped on the way, so the queue always moves."""
    verdicts: dict[str, bool] = {}

    def live(t: Ticket) -> bool:
        if t.execution == mine.execution:
            return True
        if t.execution not in verdicts:
            verdicts[t.execution] = alive(t)
        return verdicts[t.execution]

    def change(queue: Queue) -> tuple[Turn, bool]:
        dropped = [t.execution for t in queue.tickets if t.execution != mine.execution and t.expires_at < now]
        old = queue.find(mine.execution)
        # keep the original ticket (its place); a waiting execution may outlive its first TTL, so the TTL is
        # renewed once half of it is spent (not at every poll: fewer writes, fewer conflicts between waiters)
        ticket = old or mine
        if old and (old.expires_at - now) * 2 < mine.expires_at - now:
            ticket = replace(old, expires_at=mine.expires_at, execution_arn=mine.execution_arn or old.execution_arn)
        queue.tickets = [t for t in queue.tickets if t.execution not in dropped and t.execution != mine.execution]
        last = queue.last_started
        if last and last.execution != mine.execution and last.idempotency_key != mine.idempotency_key and strictly_before(ticket, last):
            turn = Turn("SUPERSEDED", by=last, why=(
                f"a newer upload {last.key} (execution {last.execution}) already took its turn on {endpoint}: "
                "deploying this older upload now would reverse the upload order"), dropped=tuple(dropped))  # fmt: skip
            return turn, old is not None or bool(dropped)
        queue.tickets.append(ticket)
        while True:
            order = ordered(queue.tickets)
            # the ticket that took its turn stays at the head until it leaves (a tie in one second may sort after it)
            started = [t for t in order if queue.last_started and t.execution == queue.last_started.execution]
            order = started + [t for t in order if t not in started]
            me = order.index(ticket)
            newer = [t for t in order[me + 1 :] if t.supersede and t.idempotency_key != ticket.idempotency_key]
            if newer and not live(newer[-1]):
                dropped.append(newer[-1].execution)
                queue.drop(newer[-1].execution)
                continue
            if newer and (me > 0 or queue.last_started is None or queue.last_started.execution != ticket.execution):
                by = newer[-1]
                queue.drop(ticket.execution)
                why = f"a newer upload {by.key} (execution {by.execution}) supersedes it (supersede: true)"
                return Turn("SUPERSEDED", by=by, why=why, dropped=tuple(dropped)), True
            if me == 0:
                if ticket.expires_at < mine.expires_at:  # the holder's ticket lives as long as its lock
                    queue.drop(ticket.execution)
                    ticket = replace(ticket, expires_at=mine.expires_at)
                    queue.tickets.append(ticket)
                changed = old != ticket or bool(dropped) or queue.last_started != ticket
                queue.last_started = ticket
                return Turn("TURN", dropped=tuple(dropped)), changed or not queue.exists
            head = order[0]
            if not live(head):
                dropped.append(head.execution)
                queue.drop(head.execution)
                continue
            why = f"waits its turn behind execution {head.execution} ({head.key}); {me} upload(s) ahead"
            return Turn("QUEUED", position=me, head=head, why=why, dropped=tuple(dropped)), old != ticket or bool(dropped)

    return update(table, endpoint, change, expires_at)
