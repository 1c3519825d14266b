r"""Route selection as API Gateway does it (pure): ``$request.body.<path>`` over a JSON message.

API Gateway documents two spellings, the bare ``$request.body.action`` and the wrapped
``${request.body.action}``, and wrapped variables may be joined with static text
(``${request.body.service}/${request.body.action}`` evaluates to ``chat/join``; ``\$`` is a literal
dollar sign). The path is JSONPath: member names, ``[n]`` indexes and quoted names in brackets.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Collection
from typing import Any

from lambdacast_local import jsoncodec

DEFAULT_ROUTE = "$default"
_BARE_PREFIX = "$request.body."
_WRAPPED = re.compile(r"(?<!\\)\$\{request\.body\.([^{}]+)\}")
# One step of a body path: a name after a dot (or at the start), an index, or a quoted name in brackets.
_STEP = re.compile(r"""(?:^|\.)([^.\[\]'"$]+)|\[(\d+)\]|\['([^']*)'\]|\["([^"]*)"\]""")

Path = tuple[str | int, ...]
"""Steps into the message body: object member names and array indexes."""

Selection = tuple[str | Path, ...]
"""A parsed expression: static text, and body paths (``("meta", "type")``, ``("items", 0)``) to evaluate."""


def _unsupported(expression: str) -> ValueError:
    return ValueError(f"unsupported route selection expression {expression!r}")


def _path(text: str, expression: str) -> Path:
    """``a.b[0]['c d']`` -> ``("a", "b", 0, "c d")``: the JSONPath steps API Gateway evaluates.

    Member names, dots, ``[n]`` indexes and quoted names are the JSONPath the documentation's examples
    use; wildcards, slices and filters select several values, which cannot make one route key: refused.
    """
    steps: list[str | int] = []
    position = 0
    while position < len(text):
        match = _STEP.match(text, position)
        if match is None or match.end() == position:
            raise _unsupported(expression)
        name, index, single, double = match.groups()
        if index is not None:
            steps.append(int(index))
        else:
            step = next(part for part in (name, single, double) if part is not None)
            if step == "*":
                raise _unsupported(expression)
            steps.append(step)
        position = match.end()
    if not steps:
        raise _unsupported(expression)
    return tuple(steps)


def _static(text: str, expression: str) -> str:
    r"""Static text of an expression; ``\$`` is a literal dollar sign, any other ``$`` a variable."""
    if "$" in text.replace("\\$", ""):
        raise _unsupported(expression)
    return text.replace("\\$", "$")


@functools.lru_cache(maxsize=16)
def parse_selection(expression: str) -> Selection:
    """Parse a RouteSelectionExpression into static text and body paths.

    Raises:
        ValueError: The expression uses something other than ``$request.body.<path>`` variables.
    """
    if expression.startswith(_BARE_PREFIX) and "{" not in expression:
        return (_path(expression[len(_BARE_PREFIX) :], expression),)
    parts: list[str | Path] = []
    position = 0
    for match in _WRAPPED.finditer(expression):
        if match.start() > position:
            parts.append(_static(expression[position : match.start()], expression))
        parts.append(_path(match.group(1), expression))
        position = match.end()
    if position < len(expression):
        parts.append(_static(expression[position:], expression))
    if not any(isinstance(part, tuple) for part in parts):
        raise _unsupported(expression)
    return tuple(parts)


def _step(value: Any, step: str | int) -> Any:
    if isinstance(step, int):
        return value[step] if isinstance(value, list) and step < len(value) else None
    return value.get(step) if isinstance(value, dict) else None


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
            for step in part:
                value = _step(value, step)
            text = _scalar_text(value)
            if text is None:  # a variable that cannot be evaluated: API Gateway falls back to $default
                texts = []
                break
            texts.append(text)
        key = "".join(texts) or None
    if key is not None and key in route_keys and not key.startswith("$"):
        return key
    return DEFAULT_ROUTE if DEFAULT_ROUTE in route_keys else None
