"""Token verification for the ``$connect`` REQUEST authorizer.

A browser cannot set headers on a WebSocket, so the token arrives as ``?token=<JWT>``.
Two key sources, chosen by the environment (:class:`AuthSettings`), never both:

* ``AUTH_SECRET_PARAMETER``: the *name* of an SSM SecureString holding an HS256 secret
  (fetched with Powertools' parameters utility and cached across invocations);
* ``AUTH_JWKS_URL`` + ``AUTH_ISSUER`` + ``AUTH_AUDIENCE``: RS256/ES256 keys from an OIDC
  issuer's JWKS (PyJWT's ``PyJWKClient``, one per URL per process, with its key-set cache).

Algorithms are allow-listed by key source (HS256 with the secret; RS256/ES256 with the JWKS), so
``alg: none`` and HS/RS algorithm confusion are refused before any key is used. ``sub``, ``exp``,
``iat`` and ``aud`` are always required (the audience defaults to ``lambdacast``, so a JWT the site
signs with the same secret for another purpose is not a lambdacast token), ``iss`` when an issuer is
configured, and ``exp - iat`` may not exceed ``AUTH_MAX_TOKEN_LIFETIME_SECONDS``; ``exp``/``nbf``/``iat``
get a small leeway. Every refusal carries a reason that is logged, never sent to the client (API
Gateway answers a Deny with 403).

Before any of that, the handshake's ``Origin`` is checked against ``AUTH_ALLOWED_ORIGINS`` (when set),
in every mode: a web page of another site cannot open a connection, and costs no ``$connect``
invocation and no DynamoDB write.

PyJWT and the SSM client are imported only when a token has to be verified, so an anonymous
``$connect`` pays neither on a cold start.
"""

from __future__ import annotations

import enum
import functools
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Protocol
from urllib.parse import urlsplit

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.data_classes.api_gateway_authorizer_event import (
    APIGatewayAuthorizerResponseWebSocket,
    parse_api_gateway_arn,
)

from lambdacast.authz import (
    ANONYMOUS,
    ANONYMOUS_PRINCIPAL,
    MAX_NAME_LENGTH,
    MAX_PATTERN_LENGTH,
    MAX_PATTERNS,
    MAX_PATTERNS_JSON_BYTES,
    MAX_USER_ID_LENGTH,
    Identity,
    authorizer_context,
)

if TYPE_CHECKING:
    from jwt import PyJWKClient

logger = Logger(child=True)

SECRET_ALGORITHMS: Final = ("HS256",)
JWKS_ALGORITHMS: Final = ("RS256", "ES256")
MIN_SECRET_BYTES: Final = 32
MAX_TOKEN_LENGTH: Final = 8192
MAX_LEEWAY_SECONDS: Final = 300
DEFAULT_AUDIENCE: Final = "lambdacast"
DEFAULT_MAX_TOKEN_LIFETIME_SECONDS: Final = 86400
MAX_TOKEN_LIFETIME_LIMIT_SECONDS: Final = 7 * 86400
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}
#: Glob patterns use the channel-name alphabet plus the glob characters ``* ? [ ] !``.
_PATTERN_RE: Final = re.compile(r"[A-Za-z0-9_\-=@,.;:*?\[\]!]+")
_LOCAL_HOSTS: Final = frozenset({"127.0.0.1", "localhost", "::1"})


class AuthMode(enum.StrEnum):
    """The ``AuthMode`` template parameter."""

    NONE = "none"  # anonymous only; tokens are ignored
    OPTIONAL = "optional"  # anonymous allowed, tokens honoured, a bad token denied
    REQUIRED = "required"  # a valid token or Deny


class AuthConfigError(ValueError):
    """The authorizer's environment is inconsistent (raised at cold start: fail closed)."""


class AuthError(Exception):
    """A token was refused.

    Attributes:
        reason: A short machine-readable reason for the log (``expired``, ``bad_signature``...).
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class AuthSettings:
    """Authorizer settings, read once from the environment and frozen."""

    mode: AuthMode = AuthMode.NONE
    secret_parameter: str | None = None
    jwks_url: str | None = None
    issuer: str | None = None
    audience: str = DEFAULT_AUDIENCE
    max_token_lifetime_seconds: int = DEFAULT_MAX_TOKEN_LIFETIME_SECONDS
    allowed_origins: frozenset[str] = frozenset()
    leeway_seconds: int = 30
    secret_max_age_seconds: int = 300
    jwks_cache_seconds: int = 300

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AuthSettings:
        """Reads ``AUTH_*`` variables.

        Args:
            environ: The environment (``os.environ`` when omitted).

        Returns:
            Validated settings.

        Raises:
            AuthConfigError: When a value is invalid or the key source is ambiguous or missing.
        """
        env = os.environ if environ is None else environ
        raw_mode = env.get("AUTH_MODE", "none").strip().lower()
        try:
            mode = AuthMode(raw_mode)
        except ValueError:
            allowed = ", ".join(m.value for m in AuthMode)
            raise AuthConfigError(f"AUTH_MODE is {raw_mode!r}; expected one of {allowed}") from None
        settings = cls(
            mode=mode,
            secret_parameter=env.get("AUTH_SECRET_PARAMETER") or None,
            jwks_url=env.get("AUTH_JWKS_URL") or None,
            issuer=env.get("AUTH_ISSUER") or None,
            audience=(env.get("AUTH_AUDIENCE") or "").strip() or DEFAULT_AUDIENCE,
            max_token_lifetime_seconds=_int_env(
                env,
                "AUTH_MAX_TOKEN_LIFETIME_SECONDS",
                DEFAULT_MAX_TOKEN_LIFETIME_SECONDS,
                60,
                MAX_TOKEN_LIFETIME_LIMIT_SECONDS,
            ),
            allowed_origins=parse_allowed_origins(env.get("AUTH_ALLOWED_ORIGINS", "")),
            leeway_seconds=_int_env(env, "AUTH_LEEWAY_SECONDS", 30, 0, MAX_LEEWAY_SECONDS),
            secret_max_age_seconds=_int_env(env, "AUTH_SECRET_MAX_AGE_SECONDS", 300, 1, 86400),
            jwks_cache_seconds=_int_env(env, "AUTH_JWKS_CACHE_SECONDS", 300, 1, 86400),
        )
        settings._validate()
        return settings

    def _validate(self) -> None:
        if self.mode is AuthMode.NONE:
            return
        if bool(self.secret_parameter) == bool(self.jwks_url):
            raise AuthConfigError(
                f"AUTH_MODE={self.mode.value} needs exactly one key source: "
                "AUTH_SECRET_PARAMETER (HS256) or AUTH_JWKS_URL (RS256/ES256)"
            )
        if self.jwks_url:
            url = urlsplit(self.jwks_url)
            if url.scheme != "https" and not (url.scheme == "http" and url.hostname in _LOCAL_HOSTS):
                raise AuthConfigError("AUTH_JWKS_URL must be https:// (http:// only for localhost)")
            if not self.issuer:
                raise AuthConfigError("AUTH_JWKS_URL needs AUTH_ISSUER")


def _int_env(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise AuthConfigError(f"{name} is {raw!r}; expected an integer") from None
    if not low <= value <= high:
        raise AuthConfigError(f"{name} is {value}; expected {low}..{high}")
    return value


def normalize_origin(value: str) -> str | None:
    """The canonical ``scheme://host[:port]`` of a web origin, or ``None`` when it is not one.

    Scheme and host are lowercased and a default port (80 for http, 443 for https) is dropped, as
    browsers send it in the ``Origin`` header. Anything with a path, query, fragment, user info, or
    another scheme (``null``, ``file://``) is not an origin.

    Args:
        value: An ``Origin`` header value or a configured origin.

    Returns:
        The normalized origin, or ``None``.
    """
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:
        return None
    host = parts.hostname
    if parts.scheme.lower() not in _DEFAULT_PORTS or not host or "@" in parts.netloc:
        return None
    if parts.path not in ("", "/") or parts.query or parts.fragment or "*" in host:
        return None
    scheme = parts.scheme.lower()
    host = f"[{host}]" if ":" in host else host  # an IPv6 literal keeps its brackets
    if port is None or port == _DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def parse_allowed_origins(raw: str) -> frozenset[str]:
    """Parses ``AUTH_ALLOWED_ORIGINS``: a comma-separated list of exact origins (empty: any origin).

    Args:
        raw: The variable's value, e.g. ``https://example.com, https://www.example.com``.

    Returns:
        The normalized origins.

    Raises:
        AuthConfigError: An entry is not an exact ``scheme://host[:port]`` origin (no paths, no
            wildcards), so a typo fails the cold start instead of letting every origin in.
    """
    origins: set[str] = set()
    for entry in (part.strip() for part in raw.split(",")):
        if not entry:
            continue
        origin = normalize_origin(entry)
        if origin is None:
            raise AuthConfigError(
                f"AUTH_ALLOWED_ORIGINS entry {entry[:80]!r} is not an origin such as https://example.com "
                "(scheme://host[:port], no path, no wildcard)"
            )
        origins.add(origin)
    return frozenset(origins)


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


@dataclass(frozen=True, slots=True)
class AuthDecision:
    """The outcome of one ``$connect`` authorization."""

    allowed: bool
    identity: Identity
    reason: str


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
