"""A small FunctionApp for devhost's tests: HTTP functions over routes, bodies and failures, and
Service Bus / Cosmos DB triggers that record what they were given in the store."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import azure.functions as func

from shared.bootstrap import get_services
from shared.ports import OutboundMessage

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)

RECORDS = "customercenter"
RECORDS_PARTITION = "fixture"


def _record(record_id: str, **fields: object) -> None:
    get_services().store.upsert(
        RECORDS, {"id": record_id, "customerId": RECORDS_PARTITION, **fields}
    )


def _json(value: object, status: int = 200, correlation_id: str | None = None) -> func.HttpResponse:
    return func.HttpResponse(
        json.dumps(value),
        status_code=status,
        mimetype="application/json",
        headers={"X-Correlation-Id": correlation_id or "from-the-function"},
    )


@app.route(route="health", methods=["GET"])
def health(req: func.HttpRequest) -> func.HttpResponse:
    return _json({"status": "ok"})


@app.route(route="echo/{id}", methods=["GET", "POST"])
def echo(req: func.HttpRequest) -> func.HttpResponse:
    return _json(
        {
            "method": req.method,
            "url": req.url,
            "params": dict(req.params),
            "routeParams": dict(req.route_params),
            "testHeader": req.headers.get("x-test"),
            "body": req.get_body().decode(),
        },
        correlation_id=req.headers.get("x-correlation-id"),
    )


@app.route(route="items/{n:int}", methods=["GET"])
async def item(req: func.HttpRequest) -> func.HttpResponse:
    return _json({"n": int(req.route_params["n"]), "async": True})


@app.route(route="text", methods=["GET"])
def text(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("plain", status_code=202, headers={"X-Extra": "1"})


@app.route(route="boom", methods=["GET"])
def boom(req: func.HttpRequest) -> func.HttpResponse:
    raise RuntimeError("the fixture fails on purpose")


@app.route(route="slow", methods=["GET"])
async def slow(req: func.HttpRequest) -> func.HttpResponse:
    _record(f"slow-{req.params.get('tag', '')}", kind="slow")
    await asyncio.sleep(float(req.params.get("seconds", "1")))
    return _json({"slept": True})


@app.route(route="hang", methods=["GET"])
def hang(req: func.HttpRequest) -> func.HttpResponse:
    _record("hang", kind="hang")
    time.sleep(float(req.params.get("seconds", "60")))
    return _json({"hung": True})


@app.route(route="publish/{topic}", methods=["POST"])
def publish(req: func.HttpRequest) -> func.HttpResponse:
    message = req.get_json()
    get_services().bus.publish(
        req.route_params["topic"],
        [
            OutboundMessage(
                body=json.dumps(message["body"]).encode(),
                message_id=message["messageId"],
                subject=message.get("subject", "Test"),
                correlation_id=message.get("correlationId"),
                application_properties=message.get("properties", {}),
            )
        ],
    )
    return _json({"published": message["messageId"]}, status=202)


@app.route(route="documents", methods=["POST"])
def put_document(req: func.HttpRequest) -> func.HttpResponse:
    return _json(get_services().store.upsert("musicals", req.get_json()), status=201)


@app.route(route="records", methods=["GET"])
def records(req: func.HttpRequest) -> func.HttpResponse:
    items, continuation = [], None
    while True:
        page = get_services().store.query(RECORDS, RECORDS_PARTITION, continuation=continuation)
        items += page.items
        if page.continuation is None:
            return _json(items)
        continuation = page.continuation


@app.service_bus_topic_trigger(
    arg_name="msg",
    topic_name="reservation",
    subscription_name="payment",
    connection="ServiceBusConnection",
)
def on_reservation(msg: func.ServiceBusMessage) -> None:
    body = json.loads(msg.get_body())
    _record(
        f"sb-{msg.message_id}-{msg.delivery_count}",
        kind="servicebus",
        messageId=msg.message_id,
        deliveryCount=msg.delivery_count,
        subject=msg.subject,
        correlationId=msg.correlation_id,
        applicationProperties=msg.application_properties,
        body=body,
    )
    if body.get("fail"):
        raise RuntimeError("the fixture fails this message on purpose")


_attempts: dict[str, int] = {}
_attempts_lock = threading.Lock()


@app.cosmos_db_trigger(
    arg_name="documents",
    container_name="musicals",
    database_name="outerpark",
    connection="CosmosDBConnection",
    lease_container_name="leases",
    lease_container_prefix="fixture-",
    start_from_beginning=True,
)
@app.retry(strategy="fixed_delay", max_retry_count="2", delay_interval="00:00:00.100")
def on_musicals(documents: func.DocumentList) -> None:
    for document in documents:
        with _attempts_lock:
            attempt = _attempts[document["id"]] = _attempts.get(document["id"], 0) + 1
        _record(
            f"cosmos-{document['id']}-{attempt}",
            kind="cosmos",
            documentId=document["id"],
            lsn=document["_lsn"],
            attempt=attempt,
        )
        if attempt <= document.get("failTimes", 0):
            raise RuntimeError("the fixture fails this batch on purpose")
