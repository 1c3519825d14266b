"""Route selection as API Gateway does it (pure): ``$request.body.<path>`` over a JSON message."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from lambdacast_local import jsoncodec

DEFAULT_ROUTE = "$default"


def selection_path(expression: str) -> list[str]:
    """Split ``$request.body.a.b`` into ``["a", "b"]``.

    Raises:
        ValueError: The expression does not select from the request body.
    """
    prefix = "$request.body."
    if not expression.startswith(prefix) or expression == prefix:
        raise ValueError(f"unsupported route selection expression {expression!r}")
    return expression[len(prefix) :].split(".")


def select_route(expression: str, body: str | bytes, route_keys: Collection[str]) -> str | None:
    """Pick the route key for one message.

    Args:
        expression: The API's RouteSelectionExpression (``$request.body.action``).
        body: The message (binary frames never match a custom route).
        route_keys: The API's route keys.

    Returns:
        The matching custom route key, else ``$default`` when the API has it, else ``None`` (the gateway
        then answers with API Gateway's error frame).
    """
    value: Any = None
    # Only a JSON object can hold the selection key; a body that cannot start one (most chat text, an
    # echo's payload) is not parsed at all: a failed parse costs an exception for every such message.
    if isinstance(body, str) and body.lstrip(" \t\n\r").startswith("{"):
        try:
            value = jsoncodec.loads(body)
        except ValueError:
            value = None
        for part in selection_path(expression):
            value = value.get(part) if isinstance(value, dict) else None
    key = None if value is None or isinstance(value, (bool, dict, list)) else str(value)
    if key is not None and key in route_keys and not key.startswith("$"):
        return key
    return DEFAULT_ROUTE if DEFAULT_ROUTE in route_keys else None
