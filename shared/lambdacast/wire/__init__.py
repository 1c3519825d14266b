"""Wire protocol v1, sans-I/O: what clients send and what they are sent, as text.

* :mod:`~lambdacast.wire.parser`: a client frame's text to a typed request
  (:mod:`~lambdacast.wire.requests`) or a ``ProtocolError``, and the channel naming rules;
* :mod:`~lambdacast.wire.frames`: the frames sent to clients (replies, ``message``, presence
  announcements, ``error``);
* :mod:`~lambdacast.wire.limits`: the protocol version and the limits both directions keep to;
* :mod:`~lambdacast.wire.codec`: the JSON text itself (compact out, strict in);
* :mod:`~lambdacast.wire.handshake`: the ``$connect`` answer to a ``Sec-WebSocket-Protocol`` offer.

Nothing here touches the network or the table: every rule can be tested with plain strings.
Nothing is imported here either, so each user loads only the modules it needs.
"""
