"""Auth: who may connect (the ``$connect`` authorizer) and who may use which channel.

* :mod:`~lambdacast.auth.authorizer`: the ``$connect`` REQUEST authorizer's decision (the origin,
  then the token as ``AuthMode`` requires) and the IAM policy answered to API Gateway;
* :mod:`~lambdacast.auth.settings`: the ``AUTH_*`` settings, read once and validated, and the
  allowed web origins;
* :mod:`~lambdacast.auth.tokens`: JWT verification (PyJWT), claims to an identity, and the SSM
  secret and JWKS key caches;
* :mod:`~lambdacast.auth.access`: the pure channel rules (``Identity``, ``may_access``) and the
  authorizer context that carries an identity to every later event.

Nothing is imported here: the WebSocket routes need only :mod:`~lambdacast.auth.access`, and
must not pay for Powertools' authorizer classes (or PyJWT) on a cold start.
"""
