"""The payment function: charges placed reservations and refunds cancelled ones."""

import logging

import azure.functions as func

from shared.api.messages import event_of, inbound, retry_request_of
from shared.bootstrap import get_services
from shared.handlers.payments import (
    RETRY_SUBJECT,
    PaymentDeps,
    on_reservation_cancelled,
    on_reservation_placed,
    on_retry,
)
from shared.observability import correlation, traced_message
from shared.topology import SERVICEBUS_CONNECTION, SUB_PAYMENT, TOPIC_CANCEL, TOPIC_RESERVATION

bp = func.Blueprint()
log = logging.getLogger("outerpark.payments")


def _deps() -> PaymentDeps:
    return get_services().payment_deps


@bp.service_bus_topic_trigger(
    arg_name="msg",
    connection=SERVICEBUS_CONNECTION,
    topic_name=TOPIC_RESERVATION,
    subscription_name=SUB_PAYMENT,
)
@traced_message
def charge_reservation(msg: func.ServiceBusMessage) -> None:
    message = inbound(msg)
    with correlation(message.correlation_id):
        if message.subject == RETRY_SUBJECT:
            retry = retry_request_of(message)
            payment = on_retry(retry.reservation_id, retry.deferral, _deps())
        else:
            payment = on_reservation_placed(event_of(message), _deps())
        log.info("payment %s", payment.status, extra={"reservationId": payment.reservation_id})


@bp.service_bus_topic_trigger(
    arg_name="msg",
    connection=SERVICEBUS_CONNECTION,
    topic_name=TOPIC_CANCEL,
    subscription_name=SUB_PAYMENT,
)
@traced_message
def refund_cancelled_reservation(msg: func.ServiceBusMessage) -> None:
    message = inbound(msg)
    with correlation(message.correlation_id):
        payment = on_reservation_cancelled(event_of(message), _deps())
        log.info("payment %s", payment.status, extra={"reservationId": payment.reservation_id})
