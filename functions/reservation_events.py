"""The reservation side of the saga: a payment's outcome confirms or rejects its reservation."""

import azure.functions as func

from shared.api.messages import event_of, inbound
from shared.bootstrap import get_services
from shared.domain.ids import seated_partition_of
from shared.handlers.reservations import apply_payment_outcome
from shared.handlers.seated_changes import apply_seated_payment_outcome
from shared.observability import correlation, traced_message
from shared.topology import SERVICEBUS_CONNECTION, SUB_RESERVATION, TOPIC_PAYMENT

bp = func.Blueprint()


@bp.service_bus_topic_trigger(
    arg_name="msg",
    connection=SERVICEBUS_CONNECTION,
    topic_name=TOPIC_PAYMENT,
    subscription_name=SUB_RESERVATION,
)
@traced_message
def settle_reservation(msg: func.ServiceBusMessage) -> None:
    message = inbound(msg)
    with correlation(message.correlation_id):
        services, event = get_services(), event_of(message)
        if seated_partition_of(event.payment().reservation_id):
            apply_seated_payment_outcome(event, services.seated_deps)
        else:
            apply_payment_outcome(event, services.reservation_deps)
