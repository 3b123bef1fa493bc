from __future__ import annotations

import pytest

from devhost.routing import MethodNotAllowed, Router, compile_route


def _router(prefix: str = "api") -> Router[str]:
    return Router(
        prefix,
        [
            ("musicals/{id}", ["GET"], "show"),
            ("musicals/search", None, "search"),
            ("musicals", ["GET", "POST"], "list"),
            ("reservations/{id}/cancel", ["POST"], "cancel"),
            ("items/{n:int}", None, "item"),
            ("files/{*rest}", None, "files"),
            ("pages/{page?}", None, "pages"),
        ],
    )


def test_a_parameter_segment_captures_its_value() -> None:
    match = _router().match("GET", "/api/musicals/m-1")

    assert match is not None
    assert (match.target, match.route_params) == ("show", {"id": "m-1"})


def test_a_literal_segment_wins_over_a_parameter_whatever_the_declaration_order() -> None:
    match = _router().match("GET", "/api/musicals/search")

    assert match is not None
    assert match.target == "search"


def test_literals_and_the_prefix_ignore_case_and_a_trailing_slash() -> None:
    match = _router().match("GET", "/API/Musicals/")

    assert match is not None
    assert match.target == "list"


def test_a_nested_route_takes_its_parameter_from_the_middle() -> None:
    match = _router().match("POST", "/api/reservations/r-9/cancel")

    assert match is not None
    assert (match.target, match.route_params) == ("cancel", {"id": "r-9"})


def test_an_int_constraint_refuses_a_non_number() -> None:
    assert _router().match("GET", "/api/items/x") is None
    match = _router().match("GET", "/api/items/-12")
    assert match is not None
    assert match.route_params == {"n": "-12"}


def test_an_optional_parameter_may_be_left_out() -> None:
    without = _router().match("GET", "/api/pages")
    with_page = _router().match("GET", "/api/pages/3")

    assert without is not None
    assert without.route_params == {}
    assert with_page is not None
    assert with_page.route_params == {"page": "3"}


def test_a_catch_all_takes_the_rest_of_the_path() -> None:
    match = _router().match("GET", "/api/files/a/b/c.txt")

    assert match is not None
    assert match.route_params == {"rest": "a/b/c.txt"}


def test_a_path_outside_the_prefix_or_unknown_matches_nothing() -> None:
    router = _router()

    assert router.match("GET", "/apix/musicals") is None
    assert router.match("GET", "/musicals") is None
    assert router.match("GET", "/api/unknown") is None


def test_a_known_path_with_a_wrong_method_is_refused_with_the_allowed_ones() -> None:
    with pytest.raises(MethodNotAllowed) as refused:
        _router().match("DELETE", "/api/musicals")

    assert refused.value.allowed == ["GET", "POST"]


def test_an_empty_prefix_serves_routes_at_the_root() -> None:
    match = _router(prefix="").match("GET", "/musicals/m-1")

    assert match is not None
    assert match.target == "show"


def test_route_values_with_names_that_are_not_identifiers_are_kept_as_written() -> None:
    template = compile_route("shows/{show-id}/{seat.no}")

    assert template.match("shows/s1/a7") == {"show-id": "s1", "seat.no": "a7"}
