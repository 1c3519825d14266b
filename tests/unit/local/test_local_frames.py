"""The 32 KB frame quota's scanner: frame boundaries in a client's byte stream, big data frames refused."""

from __future__ import annotations

import os

from hypothesis import given, settings
from hypothesis import strategies as st

from lambdacast_local.frames import MAX_FRAME_BYTES, FrameScanner


def frame(payload: bytes, opcode: int = 0x1, fin: bool = True, masked: bool = True) -> bytes:
    """A client frame, masked by default (the mask is zero: the scanner never reads the payload)."""
    first = (0x80 if fin else 0) | opcode
    mask_bit = 0x80 if masked else 0
    n = len(payload)
    if n < 126:
        head = bytes([first, mask_bit | n])
    elif n < 65536:
        head = bytes([first, mask_bit | 126]) + n.to_bytes(2, "big")
    else:
        head = bytes([first, mask_bit | 127]) + n.to_bytes(8, "big")
    return head + (b"\0\0\0\0" if masked else b"") + payload


def test_frames_up_to_the_limit_pass_even_split_byte_by_byte():
    # GIVEN a stream of frames of 5 bytes, exactly 32 KB, 200 bytes, and a ping
    stream = frame(b"hello") + frame(os.urandom(MAX_FRAME_BYTES), 0x2) + frame(b"x" * 200) + frame(b"", 0x9)
    scanner = FrameScanner(MAX_FRAME_BYTES)
    # WHEN it arrives one byte at a time
    # THEN no frame is reported oversized
    assert not any(scanner.oversized(stream[i : i + 1]) for i in range(len(stream)))


def test_a_data_frame_one_byte_over_the_limit_is_reported_from_its_header():
    # GIVEN a small frame then a text frame of 32 KB + 1 byte, of which only the header has arrived
    scanner = FrameScanner(MAX_FRAME_BYTES)
    big = frame(b"y" * (MAX_FRAME_BYTES + 1))
    # WHEN the first frame and the big frame's first 14 bytes arrive
    # THEN the big frame is reported before its payload
    assert scanner.oversized(frame(b"ok") + big[:14]) is True


def test_a_fragmented_message_of_small_frames_passes():
    # GIVEN a 60 KB message in 20 KB frames (text, continuation, final continuation)
    part = b"z" * 20_000
    stream = frame(part, 0x1, fin=False) + frame(part, 0x0, fin=False) + frame(part, 0x0, fin=True)
    # WHEN scanned in 1000-byte chunks THEN nothing is oversized
    scanner = FrameScanner(MAX_FRAME_BYTES)
    assert not any(scanner.oversized(stream[i : i + 1000]) for i in range(0, len(stream), 1000))


def test_an_oversized_continuation_frame_is_reported():
    # GIVEN a fragmented message whose second frame is over the limit
    stream = frame(b"a" * 10, 0x1, fin=False) + frame(b"b" * (MAX_FRAME_BYTES + 10), 0x0)
    # WHEN scanned THEN it is reported
    assert FrameScanner(MAX_FRAME_BYTES).oversized(stream) is True


_LIMIT = 300  # a small quota keeps the generated frames small; the header forms are what varies
_FRAMES = st.lists(
    st.tuples(
        st.sampled_from([0x0, 0x1, 0x2, 0x8, 0x9, 0xA]),
        st.one_of(st.integers(0, 130), st.integers(_LIMIT - 2, _LIMIT + 2), st.integers(65530, 65540)),
        st.booleans(),
    ),
    min_size=1,
    max_size=6,
)


@settings(max_examples=200, deadline=None)
@given(frames=_FRAMES, cuts=st.lists(st.integers(1, 70_000), max_size=8))
def test_any_split_of_a_stream_finds_exactly_the_frames_over_the_quota(frames, cuts):
    # GIVEN frames of every header form (7-bit, 16-bit and 64-bit lengths, masked or not, data and control)
    stream = b"".join(frame(b"\0" * length, opcode, masked=masked) for opcode, length, masked in frames)
    oversized = any(opcode in (0x0, 0x1, 0x2) and length > _LIMIT for opcode, length, _ in frames)
    # WHEN the stream arrives cut at arbitrary points (whole headers in one chunk, or split across chunks)
    points = sorted({c for c in cuts if c < len(stream)})
    chunks = [stream[a:b] for a, b in zip([0, *points], [*points, len(stream)], strict=True)]
    scanner = FrameScanner(_LIMIT)
    # THEN a frame is reported exactly when one of them is a data frame over the quota
    assert any(scanner.oversized(chunk) for chunk in chunks) is oversized
