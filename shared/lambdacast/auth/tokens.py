"""JWT verification for the ``$connect`` authorizer: signature, algorithm, claims, key sources.

Two key sources, chosen by :class:`~lambdacast.auth.settings.AuthSettings`, never both:

* ``AUTH_SECRET_PARAMETER``: the *name* of an SSM SecureString holding an HS256 secret
  (fetched with Powertools' parameters utility and cached across invocations);
* ``AUTH_JWKS_URL`` + ``AUTH_ISSUER`` + ``AUTH_AUDIENCE``: RS256/ES256 keys from an OIDC
  issuer's JWKS (PyJWT's ``PyJWKClient``, one per URL per process, with its key-set cache).

Algorithms are allow-listed by key source (HS256 with the secret; RS256/ES256 with the JWKS), so
``alg: none`` and HS/RS algorithm confusion are refused before any key is used. ``sub``, ``exp``,
``iat`` and ``aud`` are always required (the audience defaults to ``lambdacast``, so a JWT the site
signs with the same secret for another purpose is not a lambdacast token), ``iss`` when an issuer is
configured, and ``exp - iat`` may not exceed ``AUTH_MAX_TOKEN_LIFETIME_SECONDS``; ``exp``/``nbf``/``iat``
get a small leeway. Every refusal is an :class:`AuthError` whose reason is logged, never sent to
the client.

PyJWT and the SSM client are imported only when a token has to be verified, so an anonymous
``$connect`` pays neither on a cold start.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final, Protocol

from lambdacast.auth.access import (
    MAX_NAME_LENGTH,
    MAX_PATTERN_LENGTH,
    MAX_PATTERNS,
    MAX_PATTERNS_JSON_BYTES,
    MAX_USER_ID_LENGTH,
    Identity,
)
from lambdacast.auth.settings import AuthSettings

if TYPE_CHECKING:
    from jwt import PyJWKClient

__all__ = [
    "AuthError",
    "JwtVerifier",
    "TokenVerifier",
    "clear_key_caches",
    "identity_from_claims",
    "token_from_event",
]

SECRET_ALGORITHMS: Final = ("HS256",)
JWKS_ALGORITHMS: Final = ("RS256", "ES256")
MIN_SECRET_BYTES: Final = 32
MAX_TOKEN_LENGTH: Final = 8192
#: Glob patterns use the channel-name alphabet plus the glob characters ``* ? [ ] !``.
_PATTERN_RE: Final = re.compile(r"[A-Za-z0-9_\-=@,.;:*?\[\]!]+")


class AuthError(Exception):
    """A token was refused.

    Attributes:
        reason: A short machine-readable reason for the log (``expired``, ``bad_signature``...).
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


def identity_from_claims(claims: Mapping[str, Any]) -> Identity:
    """Turns verified claims into an :class:`Identity`, strictly.

    Args:
        claims: The verified JWT payload.

    Returns:
        The identity (``sub`` -> user id, ``channels`` -> patterns, ``name`` -> display name).

    Raises:
        AuthError: ``invalid_claims`` when a claim has the wrong type or length.
    """
    sub = claims.get("sub")
    if not isinstance(sub, str) or not 0 < len(sub) <= MAX_USER_ID_LENGTH or not sub.isprintable():
        raise AuthError("invalid_claims", f"sub must be a printable string of 1..{MAX_USER_ID_LENGTH} chars")
    patterns = claims.get("channels", [])
    if not isinstance(patterns, list) or len(patterns) > MAX_PATTERNS:
        raise AuthError("invalid_claims", f"channels must be a list of at most {MAX_PATTERNS} patterns")
    for pattern in patterns:
        valid = (
            isinstance(pattern, str) and len(pattern) <= MAX_PATTERN_LENGTH and _PATTERN_RE.fullmatch(pattern)
        )
        if not valid:
            raise AuthError("invalid_claims", f"channel pattern {str(pattern)[:40]!r} is not a valid glob")
    if len(json.dumps(patterns, separators=(",", ":"))) > MAX_PATTERNS_JSON_BYTES:
        raise AuthError("invalid_claims", f"channels exceed {MAX_PATTERNS_JSON_BYTES} bytes in all")
    name = claims.get("name")
    if name is not None and not (
        isinstance(name, str) and 0 < len(name) <= MAX_NAME_LENGTH and name.isprintable()
    ):
        raise AuthError("invalid_claims", f"name must be a printable string of 1..{MAX_NAME_LENGTH} chars")
    return Identity(user_id=sub, channels=tuple(patterns), name=name)


class TokenVerifier(Protocol):
    """Verifies a JWT and returns who it names."""

    def verify(self, token: str) -> Identity:
        """Returns the token's identity or raises :class:`AuthError`."""
        ...


class JwtVerifier:
    """Verifies JWTs against the configured key source (see the module docstring)."""

    def __init__(self, settings: AuthSettings) -> None:
        self._settings = settings
        self._algorithms = SECRET_ALGORITHMS if settings.secret_parameter else JWKS_ALGORITHMS

    def verify(self, token: str) -> Identity:
        """Verifies signature, algorithm, ``exp``/``nbf``, issuer, audience and claim shapes.

        Args:
            token: The compact JWT from the query string.

        Returns:
            The identity the token names.

        Raises:
            AuthError: With the refusal reason.
        """
        import jwt  # noqa: PLC0415 - lazy: anonymous connects never load PyJWT

        try:
            alg = jwt.get_unverified_header(token).get("alg")
            if alg not in self._algorithms:
                raise AuthError("algorithm_not_allowed", f"alg {str(alg)[:20]!r} not in {self._algorithms}")
            key = self._key(token)
            s = self._settings
            required = ["exp", "iat", "sub", "aud"] + (["iss"] if s.issuer else [])
            claims = jwt.decode(
                token,
                key,
                algorithms=list(self._algorithms),
                audience=s.audience,
                issuer=s.issuer,
                leeway=s.leeway_seconds,
                options={"require": required},
            )
        except jwt.PyJWTError as exc:
            raise AuthError(_refusal_reason(exc), str(exc)) from exc
        _check_lifetime(claims, self._settings.max_token_lifetime_seconds)
        return identity_from_claims(claims)

    def _key(self, token: str) -> Any:
        if self._settings.secret_parameter:
            return _secret(self._settings.secret_parameter, self._settings.secret_max_age_seconds)
        assert self._settings.jwks_url is not None  # guaranteed by AuthSettings._validate
        client = _jwks_client(self._settings.jwks_url, self._settings.jwks_cache_seconds)
        return client.get_signing_key_from_jwt(token)


def _check_lifetime(claims: Mapping[str, Any], limit: int) -> None:
    """Refuses a token minted to live longer than ``limit`` seconds (``exp - iat``).

    A stolen or leaked token is then useful for at most that long, whatever its issuer chose.
    ``iat`` is required for this (a token without it is ``missing_claim``): without it the
    lifetime could only be guessed.
    """
    issued, expires = claims.get("iat"), claims.get("exp")
    numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (issued, expires))
    if not numbers:
        raise AuthError("invalid_claims", "iat and exp must be numbers")
    lifetime = float(expires) - float(issued)  # type: ignore[arg-type]
    if lifetime > limit:
        raise AuthError("lifetime_too_long", f"exp - iat is {lifetime:.0f} s; at most {limit} s is accepted")


def _refusal_reason(exc: Exception) -> str:
    """The one mapping from PyJWT's exception tree to a refusal reason (most specific first)."""
    import jwt  # noqa: PLC0415 - lazy, see the module docstring

    reasons: dict[type[BaseException], str] = {
        jwt.ExpiredSignatureError: "expired",
        jwt.ImmatureSignatureError: "not_yet_valid",
        jwt.InvalidAudienceError: "wrong_audience",
        jwt.InvalidIssuerError: "wrong_issuer",
        jwt.MissingRequiredClaimError: "missing_claim",
        jwt.InvalidIssuedAtError: "invalid_claims",
        jwt.InvalidSignatureError: "bad_signature",
        jwt.InvalidAlgorithmError: "algorithm_not_allowed",
        jwt.PyJWKClientConnectionError: "key_unavailable",
        jwt.PyJWKSetError: "key_unavailable",
        jwt.PyJWKClientError: "unknown_key",
        jwt.DecodeError: "malformed",
    }
    for cls in type(exc).__mro__:
        if cls in reasons:
            return reasons[cls]
    return "invalid_token"


def _secret(parameter_name: str, max_age: int) -> bytes:
    """The HS256 secret from SSM (SecureString, decrypted), cached by Powertools for ``max_age``."""
    from aws_lambda_powertools.utilities import parameters  # noqa: PLC0415 - lazy: loads boto3

    try:
        value = parameters.get_parameter(parameter_name, decrypt=True, max_age=max_age)
    except parameters.exceptions.GetParameterError as exc:
        raise AuthError("key_unavailable", f"cannot read SSM parameter {parameter_name}: {exc}") from exc
    secret = value.encode()
    if len(secret) < MIN_SECRET_BYTES:
        raise AuthError("key_unavailable", f"the HS256 secret is shorter than {MIN_SECRET_BYTES} bytes")
    return secret


_JWKS_CLIENTS: dict[tuple[str, int], PyJWKClient] = {}


def _jwks_client(url: str, lifespan: int) -> PyJWKClient:
    """One ``PyJWKClient`` per URL per process, so its key-set cache outlives an invocation."""
    client = _JWKS_CLIENTS.get((url, lifespan))
    if client is None:
        from jwt import PyJWKClient  # noqa: PLC0415 - lazy, see the module docstring

        client = PyJWKClient(url, cache_jwk_set=True, lifespan=lifespan, timeout=5)
        _JWKS_CLIENTS[(url, lifespan)] = client
    return client


def clear_key_caches() -> None:
    """Forgets cached JWKS clients and SSM values (for tests and secret rotation drills)."""
    _JWKS_CLIENTS.clear()
    from aws_lambda_powertools.utilities import parameters  # noqa: PLC0415 - lazy: loads boto3

    parameters.clear_caches()  # type: ignore[no-untyped-call]


def token_from_event(event: Mapping[str, Any]) -> str | None:
    """The ``token`` query parameter of a REQUEST authorizer event.

    Args:
        event: The authorizer event.

    Returns:
        The token, or ``None`` when absent or empty.

    Raises:
        AuthError: ``malformed`` when given several times or longer than ``MAX_TOKEN_LENGTH``.
    """
    multi = (event.get("multiValueQueryStringParameters") or {}).get("token") or []
    if len(set(multi)) > 1:
        raise AuthError("malformed", "several different token parameters")
    token = (event.get("queryStringParameters") or {}).get("token")
    if not token:
        return None
    if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH:
        raise AuthError("malformed", f"token longer than {MAX_TOKEN_LENGTH} characters")
    return token
