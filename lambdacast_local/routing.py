"""Route selection as API Gateway does it (pure): ``$request.body.<path>`` over a JSON message.

API Gateway documents two spellings, the bare ``$request.body.action`` and the wrapped
``${request.body.action}``, and wrapped variables may be joined with static text
(``${request.body.service}/${request.body.action}`` evaluates to ``chat/join``).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Collection
from typing import Any

from lambdacast_local import jsoncodec

DEFAULT_ROUTE = "$default"
_BARE_PREFIX = "$request.body."
_WRAPPED = re.compile(r"\$\{request\.body\.([^{}$]+)\}")

Selection = tuple[str | tuple[str, ...], ...]
"""A parsed expression: static text, and body paths (``("meta", "type")``) to evaluate."""


@functools.lru_cache(maxsize=16)
def parse_selection(expression: str) -> Selection:
    """Parse a RouteSelectionExpression into static text and body paths.

    Raises:
        ValueError: The expression uses something other than ``$request.body.<path>`` variables.
    """
    if expression.startswith(_BARE_PREFIX) and "{" not in expression:
        path = expression[len(_BARE_PREFIX) :]
        if not path or "$" in path:
            raise ValueError(f"unsupported route selection expression {expression!r}")
        return (tuple(path.split(".")),)
    parts: list[str | tuple[str, ...]] = []
    position = 0
    for match in _WRAPPED.finditer(expression):
        if match.start() > position:
            parts.append(expression[position : match.start()])
        parts.append(tuple(match.group(1).split(".")))
        position = match.end()
    if position < len(expression):
        parts.append(expression[position:])
    if not any(isinstance(part, tuple) for part in parts) or any(
        isinstance(part, str) and "$" in part for part in parts
    ):
        raise ValueError(f"unsupported route selection expression {expression!r}")
    return tuple(parts)


def selection_path(expression: str) -> list[str]:
    """Split ``$request.body.a.b`` (or ``${request.body.a.b}``) into ``["a", "b"]``.

    Raises:
        ValueError: The expression is not a single ``$request.body.<path>`` variable.
    """
    parts = parse_selection(expression)
    if len(parts) != 1 or not isinstance(parts[0], tuple):
        raise ValueError(f"{expression!r} is not a single $request.body variable")
    return list(parts[0])


def _scalar_text(value: Any) -> str | None:
    """A selected value as route-key text; ``None`` when it cannot name a route."""
    if value is None or isinstance(value, (bool, dict, list)):
        return None
    return str(value)


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
    key: str | None = None
    # Only a JSON object can hold the selection key; a body that cannot start one (most chat text, an
    # echo's payload) is not parsed at all: a failed parse costs an exception for every such message.
    if isinstance(body, str) and body.lstrip(" \t\n\r").startswith("{"):
        try:
            document: Any = jsoncodec.loads(body)
        except ValueError:
            document = None
        texts: list[str] = []
        for part in parse_selection(expression):
            if isinstance(part, str):
                texts.append(part)
                continue
            value = document
            for name in part:
                value = value.get(name) if isinstance(value, dict) else None
            text = _scalar_text(value)
            if text is None:  # a variable that cannot be evaluated: API Gateway falls back to $default
                texts = []
                break
            texts.append(text)
        key = "".join(texts) or None
    if key is not None and key in route_keys and not key.startswith("$"):
        return key
    return DEFAULT_ROUTE if DEFAULT_ROUTE in route_keys else None
