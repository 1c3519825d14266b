"""Route selection on $request.body.<path>."""

from __future__ import annotations

import pytest

from lambdacast_local.routing import select_route, selection_path

ROUTES = {"$connect", "$default", "send", "join"}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('{"action": "send"}', "send"),
        ('{"action": "nope"}', "$default"),
        ('{"other": "send"}', "$default"),
        ("not json", "$default"),
        ('["send"]', "$default"),
        ('{"action": {"nested": 1}}', "$default"),
        ('{"action": true}', "$default"),
        ('{"action": "$connect"}', "$default"),
        (b'{"action": "send"}', "$default"),
    ],
)
def test_selects_the_route_named_by_the_body_else_default(body, expected):
    # WHEN a message is routed with $request.body.action
    # THEN the named custom route is chosen, otherwise $default (binary frames never match a custom route)
    assert select_route("$request.body.action", body, ROUTES) == expected


def test_nested_paths_are_followed():
    # WHEN the expression names a nested field
    # THEN the nested value selects the route
    assert select_route("$request.body.meta.type", '{"meta": {"type": "join"}}', ROUTES) == "join"


def test_numbers_select_routes_by_their_text():
    # WHEN the selected value is a number
    # THEN its text is the route key
    assert select_route("$request.body.v", '{"v": 2}', {"2"}) == "2"


def test_without_default_an_unmatched_message_has_no_route():
    # GIVEN an API without $default
    # WHEN nothing matches
    # THEN there is no route (the gateway answers with the error frame)
    assert select_route("$request.body.action", '{"action": "x"}', {"send"}) is None


def test_expression_outside_the_body_is_refused():
    # WHEN the expression selects something other than the body
    # THEN it is refused clearly
    with pytest.raises(ValueError, match="unsupported"):
        selection_path("$request.header.x")
