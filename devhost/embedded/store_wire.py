"""The wire format between `SqliteStoreClient` and the local store service (`devhost`).

A frame is a 4-byte big-endian length and that many bytes of a message. The client sends
`[call_id, method, args, priority]` (priority "high" or "low", as Cosmos DB's priority-based
execution: background work is "low"); the service answers `[call_id, "ok", result]` or
`[call_id, "error", error]`, in any order (calls are pipelined). A connection that sent
`[call_id, "watch", [], priority]` is then told `[None, "committed", None]` after commits.

Messages are plain data only (str, numbers, booleans, None, lists, tuples, dicts), pickled:
five times cheaper to write than JSON, and both sides refuse anything else, so no class is ever
built from a frame (the pickle documentation's "Restricting Globals"). Operations travel as
tagged lists (`["patch", id, [["incr", path, 1]], [[path, ">=", 1]], None]`); errors as
`{"type", "message"}` (plus `index` and `cause` for a failed batch), and are raised again on
the client as the same port errors. Whether a document is valid JSON is the store's to say, as
it is in process.

A document the client sent (create, upsert, replace) comes back as its stamp only,
`{"_etag", "_ts"}`: the stored document is the sent one with those, and a reservation's answer
is a third of the size that way (`shrink_result` / `expand_result`).
"""

from __future__ import annotations

import io
import pickle
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

_PLAIN_SCALARS = (str, int, float)
_SCALARS_BY_NAME = {scalar.__name__: scalar for scalar in _PLAIN_SCALARS}

_STORE_ERRORS: dict[str, type[StoreError]] = {
    error.__name__: error
    for error in (StoreError, NotFound, Conflict, PreconditionFailed, TooManyRequests)
}


class MalformedFrame(ValueError):
    """A frame that is not what this protocol sends: a bug on the other side."""


class _PlainDataPickler(pickle.Pickler):
    def reducer_override(self, obj: Any) -> Any:
        """Called for whatever is not plain data: a str, int or float subclass (an enum, say)
        goes as its plain value, as JSON would write it; anything else is refused."""
        if any(obj is scalar for scalar in _PLAIN_SCALARS):
            return NotImplemented  # the class itself, named by the reduction below
        for scalar in _PLAIN_SCALARS:
            if isinstance(obj, scalar):
                return scalar, (scalar(obj),)
        raise ValueError(f"document is not valid JSON: a {type(obj).__name__} is not plain data")


class _PlainDataUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        """Only the plain scalars `_PlainDataPickler` may name; never anything else."""
        scalar = _SCALARS_BY_NAME.get(name) if module == "builtins" else None
        if scalar is None:
            raise MalformedFrame(f"a frame names {module}.{name}: only plain data is allowed")
        return scalar


class FrameWriter:
    """Frames messages, one at a time (a connection's own: it keeps its buffer and pickler,
    which halves the cost of a frame)."""

    def __init__(self) -> None:
        self._buffer = io.BytesIO()
        self._pickler = _PlainDataPickler(self._buffer, protocol=pickle.HIGHEST_PROTOCOL)

    def frame(self, message: Any) -> bytes:
        """One frame holding `message` (plain data; anything else raises ValueError)."""
        buffer = self._buffer
        buffer.seek(0)
        buffer.truncate()
        buffer.write(b"\0" * HEADER.size)
        self._pickler.clear_memo()
        self._pickler.dump(message)
        HEADER.pack_into(buffer.getbuffer(), 0, buffer.tell() - HEADER.size)
        return buffer.getvalue()


def frame(message: Any) -> bytes:
    """One frame holding `message`, for the odd message off a connection's hot path."""
    return FrameWriter().frame(message)


class FrameReader:
    """Splits a byte stream into decoded messages."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[Any]:
        """Add received bytes; the messages they complete, in order."""
        self._buffer += data
        messages: list[Any] = []
        start = 0
        view = memoryview(self._buffer)
        try:
            while len(self._buffer) - start >= HEADER.size:
                (size,) = HEADER.unpack_from(self._buffer, start)
                if size > MAX_FRAME_BYTES:
                    raise MalformedFrame(f"a frame of {size} bytes is over the limit")
                end = start + HEADER.size + size
                if len(self._buffer) < end:
                    break
                messages.append(_load(view[start + HEADER.size : end]))
                start = end
        finally:
            view.release()
        del self._buffer[:start]
        return messages


def _load(payload: memoryview) -> Any:
    try:
        return _PlainDataUnpickler(io.BytesIO(payload)).load()
    except MalformedFrame:
        raise
    except Exception as error:
        raise MalformedFrame(f"a frame does not hold a message: {error!r}") from error


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


# --------------------------------------------------------------------------- results

_SENT_DOCUMENT = frozenset({"create", "upsert", "replace"})


def _stamp(document: dict[str, Any]) -> dict[str, Any]:
    return {"_etag": document["_etag"], "_ts": document["_ts"]}


def shrink_result(method: str, args: list[Any], result: Any) -> Any:
    """The service's side: what to send back for `result` of the call `method(args)`."""
    if method in _SENT_DOCUMENT:
        return _stamp(result)
    if method == "batch":
        return [
            _stamp(document) if operation[0] in _SENT_DOCUMENT else document
            for operation, document in zip(args[2], result, strict=True)
        ]
    return result


def expand_result(method: str, args: list[Any], sent: Any) -> Any:
    """The client's side: the call's result, from what came back and what was sent."""
    if method in _SENT_DOCUMENT:
        return {**args[1], **sent}
    if method == "batch":
        return [
            {**operation[1], **document} if operation[0] in _SENT_DOCUMENT else document
            for operation, document in zip(args[2], sent, strict=True)
        ]
    return sent
