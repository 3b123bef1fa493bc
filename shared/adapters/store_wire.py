"""The wire format between `SqliteStoreClient` and the local store service (`devhost`).

A frame is a 4-byte big-endian length and that many bytes of UTF-8 JSON. The client sends
`[call_id, method, args]`; the service answers `[call_id, "ok", result]` or
`[call_id, "error", error]`, in any order (calls are pipelined). A connection that sent
`[call_id, "watch", []]` is then told `[null, "committed", null]` after commits.

JSON rather than pickle: the documents are JSON already, and a frame can hold nothing but data.
Operations travel as tagged lists (`["patch", id, [["incr", path, 1]], [[path, ">=", 1]],
null]`); errors as `{"type", "message"}` (plus `index` and `cause` for a failed batch), and are
raised again on the client as the same port errors.
"""

from __future__ import annotations

import json
import struct
from typing import Any

from shared.ports import (
    BatchFailed,
    BatchOperation,
    Condition,
    Conflict,
    Create,
    Delete,
    Incr,
    NotFound,
    Patch,
    PatchOperation,
    PreconditionFailed,
    Read,
    Remove,
    Replace,
    Set,
    StoreError,
    TooManyRequests,
    Upsert,
)

HEADER = struct.Struct("!I")
MAX_FRAME_BYTES = 256 * 1024 * 1024
COMMITTED = "committed"
WATCH = "watch"

_ENCODE = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode
_DECODE = json.JSONDecoder().decode

_STORE_ERRORS: dict[str, type[StoreError]] = {
    error.__name__: error
    for error in (StoreError, NotFound, Conflict, PreconditionFailed, TooManyRequests)
}


class MalformedFrame(ValueError):
    """A frame that is not what this protocol sends: a bug on the other side."""


def frame(message: Any) -> bytes:
    """One frame holding `message`. A value JSON cannot hold raises ValueError, as the store
    itself would for such a document."""
    try:
        payload = _ENCODE(message).encode()
    except (TypeError, ValueError) as error:
        raise ValueError(f"document is not valid JSON: {error}") from error
    return HEADER.pack(len(payload)) + payload


class FrameReader:
    """Splits a byte stream into decoded messages."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[Any]:
        """Add received bytes; the messages they complete, in order."""
        self._buffer += data
        messages: list[Any] = []
        start = 0
        while len(self._buffer) - start >= HEADER.size:
            (size,) = HEADER.unpack_from(self._buffer, start)
            if size > MAX_FRAME_BYTES:
                raise MalformedFrame(f"a frame of {size} bytes is over the limit")
            end = start + HEADER.size + size
            if len(self._buffer) < end:
                break
            try:
                messages.append(_DECODE(self._buffer[start + HEADER.size : end].decode()))
            except (UnicodeDecodeError, json.JSONDecodeError) as error:
                raise MalformedFrame(f"a frame is not JSON: {error}") from error
            start = end
        del self._buffer[:start]
        return messages


# --------------------------------------------------------------------------- operations


def encode_conditions(conditions: tuple[Condition, ...] | list[Condition]) -> list[list[Any]]:
    return [[c.path, c.op, c.value] for c in conditions]


def decode_conditions(raw: Any) -> list[Condition]:
    return [Condition(path, op, value) for path, op, value in _list(raw)]


def encode_patch_operations(operations: Any) -> list[list[Any]]:
    encoded: list[list[Any]] = []
    for operation in operations:
        if isinstance(operation, Set):
            encoded.append(["set", operation.path, operation.value])
        elif isinstance(operation, Incr):
            encoded.append(["incr", operation.path, operation.value])
        elif isinstance(operation, Remove):
            encoded.append(["remove", operation.path])
        else:
            raise TypeError(f"unknown patch operation {operation!r}")
    return encoded


def decode_patch_operations(raw: Any) -> list[PatchOperation]:
    decoded: list[PatchOperation] = []
    for tag, *fields in _list(raw):
        match tag, fields:
            case "set", [path, value]:
                decoded.append(Set(path, value))
            case "incr", [path, value]:
                decoded.append(Incr(path, value))
            case "remove", [path]:
                decoded.append(Remove(path))
            case _:
                raise MalformedFrame(f"unknown patch operation {tag!r}")
    return decoded


def encode_batch_operations(operations: Any) -> list[list[Any]]:
    encoded: list[list[Any]] = []
    for operation in operations:
        if isinstance(operation, Create):
            encoded.append(["create", operation.document])
        elif isinstance(operation, Upsert):
            encoded.append(["upsert", operation.document, operation.if_match])
        elif isinstance(operation, Replace):
            encoded.append(["replace", operation.document, operation.if_match])
        elif isinstance(operation, Patch):
            encoded.append(
                [
                    "patch",
                    operation.id,
                    encode_patch_operations(operation.operations),
                    encode_conditions(operation.condition),
                    operation.if_match,
                ]
            )
        elif isinstance(operation, Delete):
            encoded.append(["delete", operation.id, operation.if_match])
        elif isinstance(operation, Read):
            encoded.append(["read", operation.id])
        else:
            raise ValueError(f"unknown batch operation {operation!r}")
    return encoded


def decode_batch_operations(raw: Any) -> list[BatchOperation]:
    decoded: list[BatchOperation] = []
    for tag, *fields in _list(raw):
        match tag, fields:
            case "create", [document]:
                decoded.append(Create(document))
            case "upsert", [document, if_match]:
                decoded.append(Upsert(document, if_match))
            case "replace", [document, if_match]:
                decoded.append(Replace(document, if_match))
            case "patch", [id, operations, condition, if_match]:
                decoded.append(
                    Patch(
                        id,
                        decode_patch_operations(operations),
                        decode_conditions(condition),
                        if_match,
                    )
                )
            case "delete", [id, if_match]:
                decoded.append(Delete(id, if_match))
            case "read", [id]:
                decoded.append(Read(id))
            case _:
                raise MalformedFrame(f"unknown batch operation {tag!r}")
    return decoded


def _list(raw: Any) -> list[Any]:
    if not isinstance(raw, list) or not all(isinstance(item, list) for item in raw):
        raise MalformedFrame("expected a list of lists")
    return raw


# --------------------------------------------------------------------------- errors


def encode_error(error: BaseException) -> dict[str, Any]:
    """What the client needs to raise `error` again: the port errors and ValueError as they
    are; anything else as a failure of the service."""
    if isinstance(error, BatchFailed):
        return {
            "type": "BatchFailed",
            "message": str(error),
            "index": error.index,
            "cause": encode_error(error.cause),
        }
    if type(error).__name__ in _STORE_ERRORS:
        return {"type": type(error).__name__, "message": str(error)}
    if isinstance(error, ValueError):
        return {"type": "ValueError", "message": str(error)}
    return {"type": "ServiceError", "message": f"{type(error).__name__}: {error}"}


def decode_error(raw: dict[str, Any]) -> Exception:
    kind, message = raw.get("type"), str(raw.get("message", ""))
    if kind == "BatchFailed":
        cause = decode_error(raw["cause"])
        if not isinstance(cause, StoreError):
            raise MalformedFrame(f"a batch failed with {cause!r}")
        return BatchFailed(int(raw["index"]), cause)
    if kind in _STORE_ERRORS:
        return _STORE_ERRORS[str(kind)](message)
    if kind == "ValueError":
        return ValueError(message)
    return RuntimeError(f"the store service failed: {message}")
