"""The ``$connect`` REQUEST authorizer: decide a handshake, answer API Gateway with an IAM policy.

A browser cannot set headers on a WebSocket, so the token arrives as ``?token=<JWT>``. The
handshake's ``Origin`` is checked first against ``AUTH_ALLOWED_ORIGINS`` (when set), in every
mode: a web page of another site cannot open a connection, and costs no ``$connect``
invocation and no DynamoDB write. Then the token is required, optional or ignored as
``AuthMode`` says, and verified by :mod:`lambdacast.auth.tokens` with the settings of
:mod:`lambdacast.auth.settings`. Every refusal carries a reason that is logged, never sent to
the client (API Gateway answers a Deny with 403).

PyJWT and the SSM client are imported only when a token has to be verified, so an anonymous
``$connect`` pays neither on a cold start.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.data_classes.api_gateway_authorizer_event import (
    APIGatewayAuthorizerResponseWebSocket,
    parse_api_gateway_arn,
)

from lambdacast.auth.access import ANONYMOUS, ANONYMOUS_PRINCIPAL, Identity, authorizer_context
from lambdacast.auth.settings import AuthMode, AuthSettings, normalize_origin
from lambdacast.auth.tokens import AuthError, JwtVerifier, TokenVerifier, token_from_event

__all__ = ["AuthDecision", "ConnectAuthorizer", "check_origin", "default_authorizer", "policy_response"]

logger = Logger(child=True)


def check_origin(event: Mapping[str, Any], allowed: frozenset[str]) -> None:
    """Refuses a handshake whose ``Origin`` header is not in ``allowed`` (an empty set allows any).

    Browsers always send ``Origin`` on a WebSocket handshake and a page cannot forge it, so the
    check keeps other sites' pages out. A handshake without the header comes from a program, not
    a page (it could send any header it likes): it is allowed, and its token decides.

    Args:
        event: The REQUEST authorizer event (``headers``, ``multiValueHeaders``).
        allowed: Normalized origins.

    Raises:
        AuthError: ``origin_not_allowed``.
    """
    if not allowed:
        return
    values = [
        str(value)
        for name, listed in (event.get("multiValueHeaders") or {}).items()
        if str(name).lower() == "origin"
        for value in (listed or [])
    ]
    values += [
        str(value) for name, value in (event.get("headers") or {}).items() if str(name).lower() == "origin"
    ]
    if not values:
        return
    if len(set(values)) > 1:
        raise AuthError("origin_not_allowed", "several different Origin headers")
    if normalize_origin(values[0]) not in allowed:
        raise AuthError("origin_not_allowed", f"Origin {values[0][:100]!r} is not in AUTH_ALLOWED_ORIGINS")


@dataclass(frozen=True, slots=True)
class AuthDecision:
    """The outcome of one ``$connect`` authorization."""

    allowed: bool
    identity: Identity
    reason: str


class ConnectAuthorizer:
    """Decides a ``$connect`` and answers API Gateway with an IAM policy."""

    def __init__(self, settings: AuthSettings, verifier: TokenVerifier | None = None) -> None:
        self.settings = settings
        self._verifier = verifier or JwtVerifier(settings)

    def decide(self, event: Mapping[str, Any]) -> AuthDecision:
        """Checks the origin, then applies the mode to the event's token; never raises AuthError."""
        try:
            check_origin(event, self.settings.allowed_origins)
        except AuthError as exc:
            logger.warning("origin refused", extra={"reason": exc.reason, "detail": str(exc)})
            return AuthDecision(False, ANONYMOUS, exc.reason)
        if self.settings.mode is AuthMode.NONE:
            return AuthDecision(True, ANONYMOUS, "auth_disabled")
        try:
            token = token_from_event(event)
            if token is None:
                if self.settings.mode is AuthMode.REQUIRED:
                    return AuthDecision(False, ANONYMOUS, "missing_token")
                return AuthDecision(True, ANONYMOUS, "anonymous")
            return AuthDecision(True, self._verifier.verify(token), "token_valid")
        except AuthError as exc:
            log = logger.error if exc.reason == "key_unavailable" else logger.warning
            log("token refused", extra={"reason": exc.reason, "detail": str(exc)})
            return AuthDecision(False, ANONYMOUS, exc.reason)

    def authorize(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """Decides and returns the authorizer result for the event's ``methodArn``."""
        decision = self.decide(event)
        logger.info(
            "connect allowed" if decision.allowed else "connect denied",
            extra={"reason": decision.reason, "userId": decision.identity.user_id},
        )
        return policy_response(str(event["methodArn"]), decision)


def policy_response(method_arn: str, decision: AuthDecision) -> dict[str, Any]:
    """Builds the IAM policy result (Powertools' WebSocket authorizer response).

    Args:
        method_arn: ``arn:aws:execute-api:{region}:{account}:{apiId}/{stage}/$connect``.
        decision: The decision.

    Returns:
        ``{"principalId", "policyDocument", "context"?}``; the context (Allow only) holds strings.
    """
    arn = parse_api_gateway_arn(method_arn, is_websocket_authorizer=True)
    identity = decision.identity
    response = APIGatewayAuthorizerResponseWebSocket(
        principal_id=identity.user_id or ANONYMOUS_PRINCIPAL,
        region=arn.region,
        aws_account_id=arn.aws_account_id,
        api_id=arn.api_id,
        stage=arn.stage,
        context=authorizer_context(identity) if decision.allowed else None,
        partition=arn.partition,
    )
    if decision.allowed:
        response.allow_route(arn.resource)
    else:
        response.deny_route(arn.resource)
    return response.asdict()


@functools.cache
def default_authorizer() -> ConnectAuthorizer:
    """The process-wide authorizer built from the environment (once per cold start)."""
    return ConnectAuthorizer(AuthSettings.from_env())
