from __future__ import annotations

import azure.functions as func

from devhost.metadata import functions_of


def _app() -> func.FunctionApp:
    app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)

    @app.route(route="musicals/{id}", methods=["GET"])
    def show(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse("x")

    @app.service_bus_topic_trigger(
        arg_name="msg", topic_name="t", subscription_name="s", connection="C"
    )
    def on_message(msg: func.ServiceBusMessage) -> None:
        return None

    @app.cosmos_db_trigger(
        arg_name="docs",
        container_name="musicals",
        database_name="db",
        connection="C",
        lease_container_name="leases",
        lease_container_prefix="p-",
        start_from_beginning=True,
    )
    @app.retry(strategy="fixed_delay", max_retry_count="2", delay_interval="00:00:01")
    async def on_change(docs: func.DocumentList) -> None:
        return None

    return app


def test_each_function_comes_with_its_trigger_as_function_json_writes_it() -> None:
    specs = {spec.name: spec for spec in functions_of(_app())}

    assert specs["show"].trigger == {
        "direction": "IN",
        "type": "httpTrigger",
        "name": "req",
        "methods": ["GET"],
        "authLevel": "ANONYMOUS",
        "route": "musicals/{id}",
    }
    assert specs["show"].bindings == ({"direction": "OUT", "type": "http", "name": "$return"},)
    assert specs["on_message"].trigger["topicName"] == "t"
    assert specs["on_message"].trigger_arg == "msg"
    assert specs["on_change"].trigger["leaseContainerPrefix"] == "p-"
    assert specs["on_change"].trigger["startFromBeginning"] is True


def test_the_retry_policy_and_asyncness_are_recorded() -> None:
    specs = {spec.name: spec for spec in functions_of(_app())}

    assert specs["on_change"].retry == {
        "strategy": "fixed_delay",
        "max_retry_count": "2",
        "delay_interval": "00:00:01",
    }
    assert specs["on_change"].is_async
    assert specs["show"].retry is None
    assert not specs["show"].is_async


def test_the_user_function_is_the_undecorated_one() -> None:
    spec = next(s for s in functions_of(_app()) if s.name == "show")

    assert spec.function(func.HttpRequest("GET", "/", body=b"")).get_body() == b"x"


def test_reading_an_app_twice_returns_the_same_specs_instead_of_failing() -> None:
    app = _app()

    assert functions_of(app) is functions_of(app)
