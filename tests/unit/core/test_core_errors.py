"""The one registry from exception to error frame."""

from __future__ import annotations

import pytest
from lambdacast.errors import (
    INTERNAL_ERROR_MESSAGE,
    ConnectionGone,
    ErrorCode,
    Forbidden,
    InvalidChannel,
    InvalidJson,
    NotSubscribed,
    ProtocolError,
    RequestError,
    TooLarge,
    TooManyChannels,
    UnknownAction,
    UnknownConnection,
    error_for,
    register,
)


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (InvalidJson("m"), ErrorCode.INVALID_JSON),
        (ProtocolError("m"), ErrorCode.INVALID_FRAME),
        (UnknownAction("m"), ErrorCode.UNKNOWN_ACTION),
        (InvalidChannel("m"), ErrorCode.INVALID_CHANNEL),
        (NotSubscribed("m"), ErrorCode.NOT_SUBSCRIBED),
        (Forbidden("m"), ErrorCode.FORBIDDEN),
        (TooLarge("m"), ErrorCode.TOO_LARGE),
        (TooManyChannels("m"), ErrorCode.TOO_MANY_CHANNELS),
    ],
)
def test_each_request_error_maps_to_its_code_with_its_message(exc: Exception, code: ErrorCode) -> None:
    # GIVEN a client-facing exception WHEN mapped THEN its wire code and its own sentence come out
    assert error_for(exc) == (code, "m")


def test_unregistered_exceptions_are_internal_errors_without_details() -> None:
    # GIVEN an exception whose text holds internals
    exc = KeyError("secret table layout")
    # THEN the frame says internal_error and leaks nothing
    assert error_for(exc) == (ErrorCode.INTERNAL_ERROR, INTERNAL_ERROR_MESSAGE)
    assert error_for(ConnectionGone("x", connection_id="c")) == (
        ErrorCode.INTERNAL_ERROR,
        INTERNAL_ERROR_MESSAGE,
    )


def test_an_unknown_connection_is_told_to_reconnect() -> None:
    # GIVEN a connection with no record WHEN mapped THEN internal_error, with a sentence saying to reconnect
    code, message = error_for(UnknownConnection("This connection is not registered; reconnect."))
    assert code is ErrorCode.INTERNAL_ERROR
    assert "reconnect" in message


def test_subclasses_inherit_their_parents_code_through_the_mro() -> None:
    # GIVEN a new subclass of Forbidden that nobody registered
    class NotAMember(Forbidden):
        pass

    # THEN it answers forbidden
    assert error_for(NotAMember("no"))[0] is ErrorCode.FORBIDDEN


def test_registering_a_subclass_overrides_the_parent_code() -> None:
    # GIVEN a subclass registered with its own code WHEN mapped THEN its code wins over its parent
    class Special(RequestError):
        pass

    register(Special, ErrorCode.TOO_LARGE)
    assert error_for(Special("s")) == (ErrorCode.TOO_LARGE, "s")
