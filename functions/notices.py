"""The notice function: tell customers what happened to their payments (an expired
reservation's notice comes with its payment's cancel: shared.handlers.notices)."""

import azure.functions as func

from shared.api.messages import event_of, inbound
from shared.bootstrap import get_services
from shared.handlers.notices import notify_payment_outcome
from shared.observability import correlation, traced_message
from shared.topology import SERVICEBUS_CONNECTION, SUB_NOTICE, TOPIC_PAYMENT

bp = func.Blueprint()


@bp.service_bus_topic_trigger(
    arg_name="msg",
    connection=SERVICEBUS_CONNECTION,
    topic_name=TOPIC_PAYMENT,
    subscription_name=SUB_NOTICE,
)
@traced_message
def notify_customer(msg: func.ServiceBusMessage) -> None:
    message = inbound(msg)
    with correlation(message.correlation_id):
        notify_payment_outcome(event_of(message), get_services().notice_deps)
