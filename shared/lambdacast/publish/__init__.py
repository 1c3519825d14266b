"""Publish: one message numbered, stored and fanned out, whoever sends it (server side).

* :mod:`~lambdacast.publish.pipeline`: one publish: the numbering transaction, the fan-out, and
  the costs settled afterwards; shared by the WebSocket ``publish`` action and the HTTP endpoint;
* :mod:`~lambdacast.publish.http_api`: ``POST /channels/{channel}/messages`` (HTTP API, IAM),
  the body checked like a client's ``publish`` frame, then handed to the pipeline.

The caller-side helper that signs such a request for a site's backend is not here: it is
:mod:`lambdacast.client_publish`, standalone (it imports nothing from lambdacast) so it can be
copied as one file, and its import path is the documented one.

Nothing is imported here: the WebSocket routes need only the pipeline.
"""
