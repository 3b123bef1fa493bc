"""The store service's wire format: every operation and error survives the trip."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime
from enum import IntEnum, StrEnum

import pytest

from devhost.embedded.store_wire import (
    HEADER,
    MAX_FRAME_BYTES,
    FrameReader,
    MalformedFrame,
    decode_batch_operations,
    decode_error,
    encode_batch_operations,
    encode_error,
    frame,
)
from shared.ports import (
    BatchFailed,
    Condition,
    Conflict,
    Create,
    Delete,
    Incr,
    NotFound,
    Patch,
    PreconditionFailed,
    Read,
    Remove,
    Replace,
    Set,
    StoreError,
    TooManyRequests,
    Upsert,
)


class Status(StrEnum):
    OPEN = "open"


class Seats(IntEnum):
    TWO = 2


EVERY_OPERATION = [
    Create({"id": "a", "pk": "p", "nested": {"list": [1, 2.5, None, True]}}),
    Upsert({"id": "b", "pk": "p"}, if_match='"e1"'),
    Replace({"id": "c", "pk": "p"}),
    Patch(
        "d",
        [Set("title", "Hamilton"), Incr("seats", -2), Remove("venue")],
        [Condition("seats", ">=", 2), Condition("open", "=", True)],
        if_match='"e2"',
    ),
    Delete("e", if_match='"e3"'),
    Read("f"),
]


def through_the_wire(message: object) -> object:
    (received,) = FrameReader().feed(frame(message))
    return received


def test_every_batch_operation_arrives_as_it_was_sent() -> None:
    sent = encode_batch_operations(EVERY_OPERATION)

    received = decode_batch_operations(through_the_wire(sent))

    assert [type(operation) for operation in received] == [type(o) for o in EVERY_OPERATION]
    assert received[:3] == EVERY_OPERATION[:3]
    patch = received[3]
    assert isinstance(patch, Patch)
    assert list(patch.operations) == list(EVERY_OPERATION[3].operations)  # type: ignore[union-attr]
    assert list(patch.condition) == list(EVERY_OPERATION[3].condition)  # type: ignore[union-attr]
    assert patch.if_match == '"e2"'
    assert received[4:] == EVERY_OPERATION[4:]


@pytest.mark.parametrize(
    "error",
    [NotFound("x"), Conflict("x"), PreconditionFailed("x"), TooManyRequests("x"), StoreError("x")],
    ids=lambda error: type(error).__name__,
)
def test_store_errors_are_raised_again_as_themselves(error: StoreError) -> None:
    again = decode_error(through_the_wire(encode_error(error)))  # type: ignore[arg-type]

    assert type(again) is type(error)
    assert str(again) == "x"


def test_a_failed_batch_keeps_its_index_and_cause() -> None:
    again = decode_error(through_the_wire(encode_error(BatchFailed(2, Conflict("r1 exists")))))  # type: ignore[arg-type]

    assert isinstance(again, BatchFailed)
    assert again.index == 2
    assert isinstance(again.cause, Conflict)


def test_a_refused_argument_is_a_value_error_and_anything_else_a_runtime_error() -> None:
    refused = decode_error(encode_error(ValueError("a document is a JSON object")))
    broken = decode_error(encode_error(KeyError("oops")))

    assert type(refused) is ValueError
    assert isinstance(broken, RuntimeError)
    assert "KeyError" in str(broken)


def test_a_value_that_is_not_plain_data_is_refused_before_it_is_sent() -> None:
    with pytest.raises(ValueError, match="not valid JSON"):
        frame([1, "create", ["c", {"id": "a", "when": datetime.now(UTC)}]])
    with pytest.raises(ValueError, match="not valid JSON"):
        frame([1, "create", ["c", {"id": "a", "thing": object()}]])


def test_enum_values_travel_as_their_plain_values() -> None:
    (message,) = FrameReader().feed(frame({"status": Status.OPEN, "seats": Seats.TWO}))

    assert message == {"status": "open", "seats": 2}
    assert type(message["status"]) is str
    assert type(message["seats"]) is int


def test_a_frame_that_names_a_class_is_malformed_and_nothing_is_built() -> None:
    payload = pickle.dumps(datetime.now(UTC))

    with pytest.raises(MalformedFrame, match="only plain data"):
        FrameReader().feed(HEADER.pack(len(payload)) + payload)


def test_frames_split_anywhere_in_the_stream_come_out_whole_and_in_order() -> None:
    stream = b"".join(frame([n, "ok", {"n": n, "text": "é" * n}]) for n in range(50))
    reader = FrameReader()

    messages = [
        m for start in range(0, len(stream), 7) for m in reader.feed(stream[start : start + 7])
    ]

    assert [message[0] for message in messages] == list(range(50))
    assert messages[49][2]["text"] == "é" * 49


def test_a_frame_over_the_limit_or_not_json_is_malformed() -> None:
    with pytest.raises(MalformedFrame):
        FrameReader().feed(HEADER.pack(MAX_FRAME_BYTES + 1))
    with pytest.raises(MalformedFrame):
        FrameReader().feed(HEADER.pack(2) + b"{x")
    with pytest.raises(MalformedFrame):
        FrameReader().feed(HEADER.pack(0))


def test_an_unknown_operation_is_malformed() -> None:
    with pytest.raises(MalformedFrame):
        decode_batch_operations([["truncate", "everything"]])
    with pytest.raises(MalformedFrame):
        decode_batch_operations([["create"]])
