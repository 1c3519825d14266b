"""Route selection on $request.body.<path>."""

from __future__ import annotations

import pytest

from lambdacast_local.routing import parse_selection, select_route

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
        parse_selection("$request.header.x")


@pytest.mark.parametrize("expression", ["${request.body.action}", "$request.body.action"])
def test_the_wrapped_and_bare_spellings_select_alike(expression):
    # GIVEN either spelling API Gateway documents for one body variable
    # WHEN a message names a custom route
    # THEN that route is chosen, and a message without the field goes to $default
    assert select_route(expression, '{"action": "send"}', ROUTES) == "send"
    assert select_route(expression, '{"other": "send"}', ROUTES) == "$default"


def test_several_wrapped_variables_and_static_text_make_one_key():
    # GIVEN the documented ${request.body.service}/${request.body.action} expression
    expression = "${request.body.service}/${request.body.action}"
    body = '{"service": "chat", "action": "join", "data": {"room": "r1"}}'
    # WHEN the message carries both fields
    # THEN the key is the evaluated text, chat/join
    assert select_route(expression, body, {"chat/join", "$default"}) == "chat/join"
    # AND a message missing one of them cannot be evaluated: $default
    assert select_route(expression, '{"action": "join"}', {"chat/join", "$default"}) == "$default"


def test_static_text_around_a_wrapped_variable_is_kept():
    # GIVEN ${request.body.version}-beta (the documented example of explicit variable boundaries)
    # WHEN version is 2
    # THEN the key is 2-beta
    assert select_route("${request.body.version}-beta", '{"version": 2}', {"2-beta"}) == "2-beta"


def test_route_keys_match_exactly_case_and_spaces_included():
    # GIVEN routes whose keys differ in case and one with a space
    keys = {"Send", "send message", "$default"}
    # WHEN messages name them
    # THEN only an exact match selects a route
    assert select_route("$request.body.action", '{"action": "Send"}', keys) == "Send"
    assert select_route("$request.body.action", '{"action": "send"}', keys) == "$default"
    assert select_route("$request.body.action", '{"action": "send message"}', keys) == "send message"


@pytest.mark.parametrize(
    "expression",
    [
        "$request.header.x",
        "${request.header.x}",
        "static",
        "${request.body.a}$context.x",
        "",
        "$request.body.items[*]",
        "$request.body.items[0:2]",
        "$request.body.a..b",
        "$request.body.",
    ],
)
def test_expressions_beyond_body_variables_are_refused(expression):
    # WHEN an expression uses anything but $request.body variables
    # THEN parsing it fails clearly (the template loader names the resource)
    with pytest.raises(ValueError, match="unsupported"):
        parse_selection(expression)


def test_an_array_index_selects_an_element():
    # GIVEN a JSONPath with an index, as the documentation allows any JSONPath after request.body
    # WHEN the message's array has that element
    # THEN its text is the key; a short array or a non-array cannot be evaluated: $default
    expression = "$request.body.events[1].type"
    keys = {"join", "$default"}
    assert select_route(expression, '{"events": [{"type": "x"}, {"type": "join"}]}', keys) == "join"
    assert select_route(expression, '{"events": [{"type": "join"}]}', keys) == "$default"
    assert select_route(expression, '{"events": {"1": {"type": "join"}}}', keys) == "$default"


def test_a_quoted_name_in_brackets_selects_a_member_with_any_characters():
    # GIVEN a member whose name has a dot and a space, reached by a quoted name in brackets
    # WHEN the message has it
    # THEN it selects, in either quote style
    body = '{"meta": {"a.b c": "send"}}'
    assert select_route("${request.body.meta['a.b c']}", body, ROUTES) == "send"
    assert select_route('$request.body.meta["a.b c"]', body, ROUTES) == "send"


def test_an_escaped_dollar_is_static_text():
    # GIVEN static text with an escaped dollar sign around a variable
    expression = "v\\$-${request.body.action}"
    # WHEN the expression is parsed and a message evaluated
    # THEN the dollar sign is kept literally in the key
    assert parse_selection(expression) == ("v$-", ("action",))
    assert select_route(expression, '{"action": "send"}', {"v$-send", "$default"}) == "v$-send"
