"""``lambdacast check URL``: the lambdacast protocol's conformance suite against any endpoint.

It speaks protocol v1 (docs/protocol.md) to a running stack, local (``lambdacast local``) or deployed
(``wss://…execute-api…``), and prints one line per behaviour: PASS, FAIL or SKIP and what it saw.
``session`` is the WebSocket client, ``suite`` the runner and its verdicts, ``behaviours`` the checks.
"""
