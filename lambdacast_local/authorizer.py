"""REQUEST authorizer semantics (pure): identity sources present? what does the returned policy allow?"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

INVOKE_ACTION = "execute-api:Invoke"


def missing_identity_sources(
    sources: Iterable[str], headers: Mapping[str, str], query: Mapping[str, str]
) -> list[str]:
    """Return the identity sources absent from a handshake (API Gateway then answers 401 unasked).

    Args:
        sources: Identity sources such as ``route.request.header.Auth`` or
            ``route.request.querystring.token``.
        headers: The handshake headers (matched case-insensitively).
        query: The query string parameters (matched exactly).
    """
    lowered = {name.lower(): value for name, value in headers.items()}
    missing: list[str] = []
    for source in sources:
        kind, _, name = source.removeprefix("route.request.").partition(".")
        absent_header = kind == "header" and not lowered.get(name.lower())
        if absent_header or (kind == "querystring" and not query.get(name)):
            missing.append(source)
    return missing


@dataclass(frozen=True)
class Decision:
    """What an authorizer's answer means for the handshake."""

    status: int
    """200 allowed, 403 denied, 500 the authorizer failed or answered something API Gateway rejects."""
    context: dict[str, Any] | None = None
    """``requestContext.authorizer`` for every later event of the connection (when allowed)."""


def _statements(policy: Any) -> list[dict[str, Any]]:
    statements = policy.get("Statement", []) if isinstance(policy, dict) else []
    if isinstance(statements, dict):
        statements = [statements]
    return [s for s in statements if isinstance(s, dict)]


def _wildcard(pattern: str) -> re.Pattern[str]:
    """IAM's policy wildcards: ``*`` any run of characters (``:`` and ``/`` too), ``?`` exactly one."""
    return re.compile("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern))


def _matches(values: Any, target: str, *, case_sensitive: bool = True) -> bool:
    """Does a policy ``Resource`` / ``Action`` (a string or a list of them) cover ``target``?"""
    patterns = values if isinstance(values, list) else [values]
    flags = 0 if case_sensitive else re.IGNORECASE
    return any(re.fullmatch(_wildcard(str(p)).pattern, target, flags) for p in patterns)


def _applies(statement: dict[str, Any], method_arn: str) -> bool:
    """A statement applies when its Action covers ``execute-api:Invoke`` and its Resource the method."""
    action = statement.get("Action", "")
    return _matches(action, INVOKE_ACTION, case_sensitive=False) and _matches(
        statement.get("Resource", ""), method_arn
    )


def _as_string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def decide(result: Any, method_arn: str, integration_latency_ms: int) -> Decision:
    """Evaluate an authorizer's returned policy for ``$connect``.

    A statement counts when its Action covers ``execute-api:Invoke`` and its Resource the method ARN (IAM
    wildcards ``*`` and ``?`` anywhere). An explicit Deny wins; otherwise an Allow is needed. A missing or
    empty ``principalId`` is a malformed answer (500). ``principalId`` and the
    ``context`` map become ``requestContext.authorizer`` (context values flattened, as on AWS).
    """
    if not isinstance(result, dict) or "policyDocument" not in result:
        return Decision(500)
    principal = result.get("principalId")
    if not isinstance(principal, str) or not principal:
        return Decision(500)  # API Gateway rejects an answer without principalId as a malformed response
    effects = [
        str(statement.get("Effect", "")).lower()
        for statement in _statements(result["policyDocument"])
        if _applies(statement, method_arn)
    ]
    if "deny" in effects or "allow" not in effects:
        return Decision(403)
    context: dict[str, Any] = {}
    extra = result.get("context") or {}
    if not isinstance(extra, dict) or any(isinstance(v, (dict, list)) for v in extra.values()):
        return Decision(500)
    # Handlers receive context values as strings (booleans as "true"/"false"), as with API Gateway's REST and
    # WebSocket APIs: code reading a number must convert it there too.
    context.update({str(k): _as_string(v) for k, v in extra.items()})
    context["principalId"] = principal
    context["integrationLatency"] = integration_latency_ms
    return Decision(200, context)


def failed(error: Mapping[str, Any] | None) -> Decision:
    """An authorizer that raised: ``Exception("Unauthorized")`` is 401 (as on AWS), anything else 500."""
    if error is not None and error.get("errorMessage") == "Unauthorized":
        return Decision(401)
    return Decision(500)
