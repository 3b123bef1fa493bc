"""One trace per reservation: the trace context survives outbox → bus → handler.

The real embedded store and bus, wrapped as bootstrap wraps them; the functions' own trace
decorators; an OpenTelemetry SDK recording in memory (the app itself only uses the API).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import azure.functions as func
import pytest
from azure.functions.timer import TimerRequest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from devhost.servicebus_trigger import function_message
from shared import observability
from shared.adapters.payment_gateway import HttpPaymentGateway
from shared.adapters.tracing import (
    DECLINE_CODE_ATTRIBUTE,
    OPERATION_ATTRIBUTE,
    ORDER_ATTRIBUTE,
    TracedDocumentStore,
    TracedPaymentGateway,
    TracedPublisher,
)
from shared.breaker import BreakerConfig, CircuitBreaker, GuardedPaymentGateway
from shared.domain.caller import Caller
from shared.domain.commands import PlaceReservation
from shared.domain.errors import NotEnoughSeats
from shared.domain.events import Event
from shared.domain.seating_commands import ReserveSeats
from shared.handlers.notices import NoticeDeps
from shared.handlers.payments import (
    PaymentDeps,
    on_reservation_cancelled,
    on_reservation_placed,
    on_retry,
)
from shared.handlers.relay import relay_outbox
from shared.handlers.reservations import place_reservation
from shared.handlers.seated_reservations import place_seated_reservation
from shared.handlers.sweeper import SweepDeps, SweepPolicy
from shared.observability import (
    CORRELATION_ATTRIBUTE,
    OUTCOME_ATTRIBUTE,
    RESERVATION_ATTRIBUTE,
    TRACE_CONTEXT_FIELD,
    step,
    trace_context,
    traced_changes,
    traced_message,
)
from shared.ports import (
    OutboundMessage,
    OutcomeUnknown,
    PaymentApproval,
    PaymentDeclined,
    TooManyRequests,
)
from shared.topology import (
    CUSTOMER_CENTER,
    MUSICALS,
    PAYMENTS,
    PERFORMANCES,
    SUB_PAYMENT,
    TOPIC_CANCEL,
    TOPIC_RESERVATION,
)
from tests.support.fake_gateway import FakeGateway
from tests.support.handler_deps import reservation_deps, seated_deps
from tests.unit.test_payments import (
    RETRY_SECONDS,
    ScriptedGateway,
    cancelled,
    current_deferral,
    placed,
)
from tests.unit.test_reservations import place
from tests.unit.test_seated_sweeper import register
from tests.unit.test_sweeper import DEADLINE, REPAIR_AFTER, RecordingSender

_EXPORTER = InMemorySpanExporter()


def _recording_provider() -> None:
    """The process's global provider can be set once: add our exporter to it either way."""
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))


_recording_provider()


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    _EXPORTER.clear()
    yield _EXPORTER
    _EXPORTER.clear()


class ApprovingGateway:
    def admits(self) -> bool:
        return True

    def confirm(self, order_id: str, amount: int, order_name: str) -> PaymentApproval:
        return PaymentApproval(payment_key=f"pk-{order_id}", approved_at=datetime.now(UTC))

    def cancel(self, payment_key: str, reason: str, idempotency_key: str) -> None:
        raise AssertionError("nothing is cancelled here")


def trace_id_of(traceparent: str) -> str:
    return traceparent.split("-")[1]


def span_id_of(traceparent: str) -> str:
    return traceparent.split("-")[2]


def hex_ids(span: ReadableSpan) -> tuple[str, str]:
    context = span.get_span_context()
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


def test_the_trace_of_a_request_is_kept_by_its_event_its_message_and_the_payment_it_caused(
    store, bus, musical, customer, clock, spans
):
    traced_store, traced_bus = TracedDocumentStore(store), TracedPublisher(bus)

    # HTTP: the request's span writes the reservation and its outbox event in one batch.
    with step("create_reservation", None, SpanKind.SERVER, {}) as request_span:
        placed = asyncio.run(
            place_reservation(
                PlaceReservation(musical_id=musical.id, seats=2),
                customer,
                "corr-7",
                None,
                reservation_deps(traced_store, clock),
            )
        )
        request_context = trace_context()
    reservation_id = placed.reservation.id
    request_trace = trace_id_of(request_context["traceparent"])

    # The outbox event keeps the request's trace context.
    changes = [change.document for change in store.read_changes(MUSICALS.name, 0)]
    (event_document,) = [doc for doc in changes if doc.get("type") == Event.DOC_TYPE]
    assert event_document[TRACE_CONTEXT_FIELD] == request_context

    # The relay continues it and hands its own span on in the message's application properties.
    @traced_changes
    def relay_reservation_events(docs: func.DocumentList) -> None:
        relay_outbox([dict(doc.data) for doc in docs], traced_bus)

    relay_reservation_events(func.DocumentList([func.Document.from_dict(d) for d in changes]))
    (message,) = bus.receive(TOPIC_RESERVATION, SUB_PAYMENT)
    (relay_span,) = [s for s in spans.get_finished_spans() if s.name.startswith("relay")]
    assert hex_ids(relay_span) == (
        request_trace,
        span_id_of(message.application_properties["traceparent"]),
    )
    assert relay_span.parent.span_id == request_span.get_span_context().span_id

    # The payment function continues the message's trace; the event it raises carries it on.
    @traced_message
    def charge_reservation(msg: func.ServiceBusMessage) -> None:
        event = Event.model_validate(json.loads(msg.get_body()))
        deps = PaymentDeps(
            store=traced_store,
            gateway=ApprovingGateway(),
            bus=traced_bus,
            clock=clock,
            retry_delay=lambda deferrals: 1.0,
        )
        on_reservation_placed(event, deps)

    charge_reservation(function_message(message))
    (payment_span,) = [s for s in spans.get_finished_spans() if s.name == "charge_reservation"]
    assert payment_span.parent.span_id == relay_span.get_span_context().span_id
    assert hex_ids(payment_span)[0] == request_trace
    assert payment_span.attributes[RESERVATION_ATTRIBUTE] == reservation_id
    assert payment_span.attributes[CORRELATION_ATTRIBUTE] == "corr-7"

    payment_changes = [change.document for change in store.read_changes(PAYMENTS.name, 0)]
    (approval,) = [doc for doc in payment_changes if doc.get("eventType") == "PaymentApproved"]
    approval_parent = approval[TRACE_CONTEXT_FIELD]["traceparent"]
    assert (trace_id_of(approval_parent), span_id_of(approval_parent)) == hex_ids(payment_span)


def test_a_message_without_trace_context_starts_a_trace_of_its_own(bus, clock, spans):
    @traced_message
    def settle(msg: func.ServiceBusMessage) -> str:
        return trace_context()["traceparent"]

    bus.publish(
        TOPIC_RESERVATION,
        [OutboundMessage(body=b"{}", message_id="m1", subject="s", correlation_id="corr-9")],
    )
    (message,) = bus.receive(TOPIC_RESERVATION, SUB_PAYMENT)
    traceparent = settle(function_message(message))

    (span,) = spans.get_finished_spans()
    assert span.parent is None
    assert trace_id_of(traceparent) == hex_ids(span)[0]
    assert span.attributes[CORRELATION_ATTRIBUTE] == "corr-9"


def test_a_failing_function_ends_its_spans_with_the_error_as_outcome(spans):
    @traced_changes
    def project(docs: func.DocumentList) -> None:
        raise RuntimeError("store down")

    with step("request", None, SpanKind.SERVER, {}):
        document = {"id": "e1", "type": "event", TRACE_CONTEXT_FIELD: trace_context()}
    with pytest.raises(RuntimeError):
        project(func.DocumentList([func.Document.from_dict(document)]))

    (failed,) = [s for s in spans.get_finished_spans() if s.name.startswith("project")]
    assert failed.attributes["outerpark.outcome"] == "error: RuntimeError"
    assert not failed.status.is_ok


def changes_of(store, container: str) -> func.DocumentList:
    """The container's change feed, as the Cosmos DB trigger hands it to a function."""
    documents = [change.document for change in store.read_changes(container, 0)]
    return func.DocumentList([func.Document.from_dict(document) for document in documents])


@pytest.fixture
def executed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The function executions the cost counters would hear of, in order."""
    names: list[str] = []
    listeners = [lambda name, seconds: names.append(name)]
    monkeypatch.setattr(observability, "_execution_listeners", listeners)
    return names


def test_a_seated_reservations_history_step_continues_its_trace(
    store, clock, spans, executed, monkeypatch
):
    from functions import history

    traced_store = TracedDocumentStore(store)
    (performance_id,) = register(store, clock, starts_in=timedelta(days=10))
    command = ReserveSeats(performance_id=performance_id, seat_ids=["A-1-1"])
    with step("create_reservation", None, SpanKind.SERVER, {}) as request_span:
        placed = asyncio.run(
            place_seated_reservation(
                command,
                Caller(customer_id="alice"),
                "corr-5",
                None,
                seated_deps(traced_store, clock),
            )
        )
    monkeypatch.setattr(history, "get_services", lambda: SimpleNamespace(async_store=traced_store))

    asyncio.run(history.history_from_performances(changes_of(store, PERFORMANCES.name)))

    (projection,) = [s for s in spans.get_finished_spans() if s.name.startswith("history_from")]
    assert projection.name == "history_from_performances ReservationPlaced"
    assert projection.parent.span_id == request_span.get_span_context().span_id
    assert hex_ids(projection)[0] == hex_ids(request_span)[0]
    assert projection.attributes[RESERVATION_ATTRIBUTE] == placed.reservation.id
    assert executed == ["history_from_performances"]
    assert store.read(CUSTOMER_CENTER.name, "alice", placed.reservation.id)


def test_a_sweep_is_a_trace_of_its_own_that_the_steps_of_the_sagas_it_drove_continue(
    store, bus, musical, customer, clock, spans, executed, monkeypatch
):
    from functions import relay, sagas

    traced_store, traced_bus = TracedDocumentStore(store), TracedPublisher(bus)
    unpaid = place(store, musical, customer, clock.now()).reservation  # its payment never ran
    clock.advance(DEADLINE.total_seconds() + 1)
    deps = SweepDeps(
        store=traced_store,
        reservations=reservation_deps(traced_store, clock),
        seated=seated_deps(traced_store, clock),
        payments=PaymentDeps(traced_store, ScriptedGateway(), traced_bus, clock, lambda n: 1.0),
        notices=NoticeDeps(traced_store, RecordingSender(), clock),
        clock=clock,
        policy=SweepPolicy(payment_deadline=DEADLINE, repair_after=REPAIR_AFTER),
    )
    monkeypatch.setattr(sagas, "get_services", lambda: SimpleNamespace(sweep_deps=deps))
    monkeypatch.setattr(relay, "get_services", lambda: SimpleNamespace(bus=traced_bus))

    sagas.sweep_sagas(TimerRequest(past_due=False))
    relay.relay_reservation_events(changes_of(store, MUSICALS.name))

    (sweep_span,) = [s for s in spans.get_finished_spans() if s.name == "sweep_sagas"]
    assert sweep_span.parent is None
    expired = store.read(MUSICALS.name, musical.id, f"{unpaid.id}.expired")
    assert span_id_of(expired[TRACE_CONTEXT_FIELD]["traceparent"]) == hex_ids(sweep_span)[1]
    (relayed,) = [s for s in spans.get_finished_spans() if s.name.startswith("relay")]
    assert relayed.name == "relay_reservation_events ReservationExpired"
    assert relayed.parent.span_id == sweep_span.get_span_context().span_id
    assert relayed.attributes[RESERVATION_ATTRIBUTE] == unpaid.id  # what `devhost trace` finds
    (message,) = bus.receive(TOPIC_CANCEL, SUB_PAYMENT)
    assert span_id_of(message.application_properties["traceparent"]) == hex_ids(relayed)[1]
    assert executed == ["sweep_sagas", "relay_reservation_events"]


def test_a_batch_the_store_refuses_is_a_span_naming_the_operation_and_its_cause(
    store, musical, customer, clock, spans
):
    """Sold out is an answer, not a store failure: no error status, no stack trace event."""
    deps = reservation_deps(TracedDocumentStore(store), clock)
    six = PlaceReservation(musical_id=musical.id, seats=6)  # of 10
    asyncio.run(place_reservation(six, customer, "corr-8", None, deps))
    with pytest.raises(NotEnoughSeats):
        asyncio.run(place_reservation(six, customer, "corr-9", None, deps))

    placed, refused = [s for s in spans.get_finished_spans() if s.name == f"batch {MUSICALS.name}"]
    assert "db.response.status_code" not in placed.attributes
    assert refused.attributes["db.response.status_code"] == "412"
    assert refused.attributes[OUTCOME_ATTRIBUTE] == "operation 0: PreconditionFailed"
    assert refused.status.status_code is StatusCode.UNSET
    assert refused.events == ()


def test_a_batch_that_fails_otherwise_is_an_error_span(store, spans):
    class Throttling:
        read = patch = delete = query = None  # not called

        def batch(self, container, partition_key, operations):
            raise TooManyRequests("the store is throttling")

    with pytest.raises(TooManyRequests):
        TracedDocumentStore(Throttling()).batch(MUSICALS.name, "m", [])

    (batch,) = [s for s in spans.get_finished_spans() if s.name == f"batch {MUSICALS.name}"]
    assert batch.status.status_code is StatusCode.ERROR
    assert batch.status.description == "TooManyRequests: the store is throttling"


def gateway_spans(spans: InMemorySpanExporter) -> list[ReadableSpan]:
    return [s for s in spans.get_finished_spans() if s.name.startswith("gateway ")]


def test_each_gateway_call_of_a_payment_is_a_child_span_naming_operation_order_and_outcome(
    store, bus, clock, spans
):
    gateway = ScriptedGateway(mode="approve_then_timeout")  # charged, the answer lost
    deps = PaymentDeps(
        store=store,
        gateway=TracedPaymentGateway(gateway),
        bus=bus,
        clock=clock,
        retry_delay=lambda deferrals: RETRY_SECONDS * deferrals,
    )
    with step("charge_reservation", None, SpanKind.CONSUMER, {}) as charge:
        on_reservation_placed(placed(clock), deps)
    gateway.mode = "approve"
    on_reservation_cancelled(cancelled(clock), deps)
    clock.advance(RETRY_SECONDS)
    with step("retry_payment", None, SpanKind.CONSUMER, {}) as retry:
        on_retry("r1", current_deferral(store), deps)

    confirm, lookup, cancel = gateway_spans(spans)
    assert [s.name for s in (confirm, lookup, cancel)] == [
        "gateway confirm",
        "gateway lookup",
        "gateway cancel",
    ]
    assert confirm.parent.span_id == charge.get_span_context().span_id
    assert lookup.parent.span_id == cancel.parent.span_id == retry.get_span_context().span_id
    assert {s.kind for s in (confirm, lookup, cancel)} == {SpanKind.CLIENT}
    assert [dict(s.attributes) for s in (confirm, lookup, cancel)] == [
        {OPERATION_ATTRIBUTE: "confirm", ORDER_ATTRIBUTE: "r1", OUTCOME_ATTRIBUTE: "unknown"},
        {OPERATION_ATTRIBUTE: "lookup", ORDER_ATTRIBUTE: "r1", OUTCOME_ATTRIBUTE: "found"},
        {OPERATION_ATTRIBUTE: "cancel", ORDER_ATTRIBUTE: "r1", OUTCOME_ATTRIBUTE: "cancelled"},
    ]
    assert not confirm.status.is_ok  # outcome unknown: an error for operators
    assert lookup.status.is_ok
    assert cancel.status.is_ok


@pytest.mark.parametrize(
    ("mode", "outcome", "is_error"),
    [
        ("approve", "approved", False),
        ("decline", "declined", False),
        ("in_progress", "still processing", False),
        ("down", "unknown", True),
        ("unreachable", "not reached", True),
        ("merchant", "merchant rejected", True),
    ],
)
def test_a_gateway_spans_outcome_names_the_family_of_the_answer(
    spans, mode: str, outcome: str, is_error: bool
):
    gateway = TracedPaymentGateway(ScriptedGateway(mode=mode))

    with contextlib.suppress(PaymentDeclined, OutcomeUnknown):
        gateway.confirm("r9", 100, "Wicked x1")

    (span,) = gateway_spans(spans)
    assert span.attributes[OUTCOME_ATTRIBUTE] == outcome
    assert span.status.is_ok is not is_error
    if mode == "decline":
        assert span.attributes[DECLINE_CODE_ATTRIBUTE] == "REJECT_CARD_PAYMENT"


def test_a_call_the_breaker_refuses_is_a_span_saying_so(store, clock, spans):
    config = BreakerConfig(failure_threshold=1, open_seconds=60)
    breaker = CircuitBreaker(store, config, clock=clock)
    gateway = TracedPaymentGateway(GuardedPaymentGateway(ScriptedGateway(mode="down"), breaker))

    for _ in range(2):
        with contextlib.suppress(OutcomeUnknown):
            gateway.lookup("r9")

    assert [s.attributes[OUTCOME_ATTRIBUTE] for s in gateway_spans(spans)] == [
        "unknown",
        "breaker open",
    ]


def test_the_http_gateways_span_has_the_answers_status_and_never_the_secret_key(spans):
    secret = "test_sk_do_not_leak_1234"
    with (
        FakeGateway() as fake,
        HttpPaymentGateway(fake.url, 2.0, secret_key=secret) as http,
    ):
        gateway = TracedPaymentGateway(http)
        gateway.confirm("r10", 100, "Wicked x1")
        assert gateway.lookup("missing") is None
        fake.set_mode("down")
        with pytest.raises(OutcomeUnknown):
            gateway.confirm("r11", 100, "Wicked x1")

    confirmed, not_found, failed = gateway_spans(spans)
    assert confirmed.attributes["http.response.status_code"] == 200
    assert not_found.attributes["http.response.status_code"] == 404
    assert not_found.attributes[OUTCOME_ATTRIBUTE] == "not found"
    assert failed.attributes["http.response.status_code"] >= 500
    recorded = json.dumps(
        [[dict(s.attributes), s.status.description, s.name] for s in gateway_spans(spans)]
    )
    token = base64.b64encode(f"{secret}:".encode()).decode()
    assert secret not in recorded
    assert token not in recorded
