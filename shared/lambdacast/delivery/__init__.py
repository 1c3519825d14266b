"""Delivery: everything the backend posts to API Gateway's ``@connections`` API.

* :mod:`~lambdacast.delivery.transport`: the synchronous entry points, running
  :mod:`~lambdacast.delivery.engine` (signed requests settled per recipient) over one pooled
  aiohttp session through :mod:`~lambdacast.delivery.exchange` (:mod:`~lambdacast.delivery.sigv4`
  signs, :mod:`~lambdacast.delivery.policy` decides what an answer means and when to retry).
* :mod:`~lambdacast.delivery.broadcaster`: the one fan-out engine (pages of subscribers, 410
  cleanup, deadlines), also posting replays in order and closing connections.
* :mod:`~lambdacast.delivery.queue` and :mod:`~lambdacast.delivery.queue_worker`: channels beyond
  one function's reach, through SQS and ``FanoutFunction``.
* :mod:`~lambdacast.delivery.endpoint`: which endpoint to post to, and which ones are ours.

Nothing is imported here: a handler that never posts never pays for aiohttp.
"""
