"""PostgreSQL's binary COPY format, as far as passing it through needs.

A ``COPY ... TO STDOUT (FORMAT binary)`` stream is a header, one message
per row, and a two-byte trailer; a ``COPY ... FROM STDIN (FORMAT binary)``
takes the same. Rows can therefore travel from one server to another
untouched, as long as the writer sends one header before them and one
trailer after, whatever number of source streams they came from.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
HEADER = SIGNATURE + bytes(8)  # no flags, no header extension
TRAILER = b"\xff\xff"


def header_length(first: bytes | memoryview) -> int:
    """How many bytes of a stream's first message are the file header.

    PostgreSQL sends the header with the first row (or with the trailer when
    there are no rows); its extension area is skipped, as the format asks.
    """
    if bytes(first[: len(SIGNATURE)]) != SIGNATURE:
        raise ValueError("not a binary COPY stream")
    return len(HEADER) + int.from_bytes(first[15:19], "big")


def fields(messages: Iterable[bytes]) -> Iterator[bytes]:
    """The one field of every row of a one-column binary COPY stream.

    Reads to the end, so the COPY finishes on its connection. (No NULLs
    are expected: a NULL field would read as empty.)
    """
    header, ended = True, False
    for message in messages:
        data = memoryview(message)
        if header:
            data, header = data[header_length(data) :], False
        if not data:
            continue
        if ended:
            raise ValueError("data after the binary COPY trailer")
        if data == TRAILER:
            ended = True
            continue
        if int.from_bytes(data[:2], "big") != 1:
            raise ValueError("expected rows of one column")
        length = max(int.from_bytes(data[2:6], "big", signed=True), 0)
        yield bytes(data[6 : 6 + length])
