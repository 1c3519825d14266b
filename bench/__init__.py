"""``make bench``: lambdacast's benchmark suite (``python -m bench``).

Suites:
    fanout      the fan-out engines (sequential boto3, boto3 thread pool, lambdacast.delivery)
                against a management API with an injected per-call latency
    coldstart   importing each ``functions/*/app.py`` in a fresh interpreter vs ``import boto3``

Results go to ``docs/benchmarks.md`` and ``docs/benchmarks/*.png``.
"""
