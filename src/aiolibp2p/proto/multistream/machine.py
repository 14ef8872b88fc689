"""multistream-select 1.0 negotiation as sans-IO state machines: :class:`Dialer`, :class:`Listener`.

Wire format (multiformats/multistream-select ``README.md``; libp2p/specs
``connections/README.md``, "Protocol Negotiation"): every message is
``uvarint(len(payload) + 1) + payload + b"\\n"``.  Both sides open with the header
``/multistream/1.0.0`` (on the wire ``b"\\x13/multistream/1.0.0\\n"``).  The dialer proposes a
protocol id; the listener echoes it (agreement) or answers ``na`` (``b"\\x03na\\n"``).  After the
echo, every byte belongs to the agreed protocol.

``ls`` (``b"\\x03ls\\n"``) asks the listener for its protocols.  The answer is *one* message
whose payload is the concatenation of one message per protocol::

    uvarint(len(body)) + body,   body = msg(p1) + msg(p2) + ... + b"\\n"
    msg(p) = uvarint(len(p) + 1) + p + b"\\n"

i.e. the usual framing applied twice.  The README's "ls example in detail" shows an older form
with a leading count; the form above is what go-multistream and rust-libp2p put on the wire,
and what this module sends and accepts.

Driving the machines (rule 3 of ARCHITECTURE.md: output is pulled):

* construct the machine; its opening bytes are queued at once;
* write ``data_to_send()`` to the peer whenever it is non-empty, *before* any application data;
* feed every received chunk to ``receive_data(chunk)`` and act on the returned events, until a
  :class:`~.events.NegotiationComplete` (hand its ``leftover`` to the application, then stop
  feeding the machine: it is done and refuses more input);
* on end of stream before completion call ``receive_eof()`` (it raises).

The remote breaking a rule raises :class:`~aiolibp2p.core.errors.NegotiationError` (the dialer
raises its subclass :class:`~aiolibp2p.core.errors.ProtocolNotSupported` when every proposal was
refused); the machine then moves to :attr:`State.ERROR` and any further input raises
:class:`~aiolibp2p.core.errors.LocalProtocolError`.  Misuse of the API (an invalid protocol id,
input after completion) raises :class:`~aiolibp2p.core.errors.LocalProtocolError`.

Limits: a protocol id is at most :data:`MAX_PROTOCOL_ID_LENGTH` (1023) UTF-8 bytes, so a message
is at most :data:`MAX_MESSAGE_SIZE` (1024) bytes counting its newline, the bound go-multistream
and js-libp2p apply to the length prefix; a length prefix above the bound is rejected as soon as
it is complete, before its body is buffered.  An ``ls`` answer is at most
:data:`MAX_LS_RESPONSE_SIZE` bytes and :data:`MAX_LS_PROTOCOLS` entries, both ways.  A listener
answers at most ``max_na_rounds`` proposals or ``ls`` requests without agreeing before failing.
The machines never hold more than one incomplete message (at most the bound plus nine prefix
bytes) between calls.
"""

from __future__ import annotations

import enum
import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Final, NoReturn, TypeAlias

from aiolibp2p._accel import multistream as mss_codec
from aiolibp2p._accel import varint
from aiolibp2p.core.errors import (
    DecodeError,
    LocalProtocolError,
    NegotiationError,
    ProtocolNotSupported,
)

from .events import Event, NegotiationComplete, ProtocolRefused, ProtocolsListed

__all__ = [
    "DEFAULT_MAX_NA_ROUNDS",
    "MAX_LS_PROTOCOLS",
    "MAX_LS_RESPONSE_SIZE",
    "MAX_MESSAGE_SIZE",
    "MAX_PROTOCOL_ID_LENGTH",
    "PROTOCOL_ID",
    "Dialer",
    "Listener",
    "State",
]

#: The multistream-select 1.0 header, sent first by both sides.
PROTOCOL_ID: Final = "/multistream/1.0.0"
#: Largest length prefix accepted or sent for a message other than an ``ls`` answer: payload plus
#: its newline (go-multistream and js-libp2p refuse a longer one).
MAX_MESSAGE_SIZE: Final = 1024
#: Longest protocol id, in UTF-8 bytes.
MAX_PROTOCOL_ID_LENGTH: Final = MAX_MESSAGE_SIZE - 1
#: Largest length prefix of an ``ls`` answer, accepted or sent.
MAX_LS_RESPONSE_SIZE: Final = 64 * 1024
#: Most protocols in an ``ls`` answer, accepted or sent (rust-libp2p's bound).
MAX_LS_PROTOCOLS: Final = 1000
#: How many ``na`` answers (and ``ls`` answers) a listener gives before it fails the negotiation.
DEFAULT_MAX_NA_ROUNDS: Final = 64

_HEADER_PAYLOAD: Final = PROTOCOL_ID.encode("ascii")
_NA: Final = b"na"
_LS: Final = b"ls"
_RESERVED: Final = frozenset({PROTOCOL_ID, "na", "ls"})
_SHOWN: Final = 64  # bytes of an offending message quoted in an error

#: What ``receive_data`` accepts.
Buffer: TypeAlias = bytes | bytearray | memoryview


class State(enum.Enum):
    """Where a negotiation stands (one set of states for both roles)."""

    #: Waiting for the remote's ``/multistream/1.0.0`` header.
    AWAIT_HEADER = "await-header"
    #: Dialer: waiting for the answer to our ``ls``.
    AWAIT_LISTING = "await-listing"
    #: Dialer: waiting for the echo of our proposal, or ``na``.
    AWAIT_ANSWER = "await-answer"
    #: Listener: waiting for a proposal or an ``ls`` request.
    AWAIT_PROPOSAL = "await-proposal"
    #: Dialer that only listed: the listing arrived, nothing was proposed; close the stream.
    LISTED = "listed"
    #: A protocol was agreed; the machine takes no more input.
    DONE = "done"
    #: Negotiation failed; the machine takes no more input.
    ERROR = "error"


_FINISHED: Final = frozenset({State.LISTED, State.DONE})


class _Input(enum.Enum):
    """A received message, classified.  ``OTHER`` is in no table: always a protocol error."""

    HEADER = "the multistream header"
    NA = "na"
    LS = "ls"
    PROTOCOL = "a protocol id"
    LISTING = "an ls answer"
    OTHER = "an unexpected message"


def _encode_protocol_id(protocol: object) -> tuple[bytes, bytes]:
    """Validate a protocol id we are asked to send: ``(payload, framed message)``."""
    if not isinstance(protocol, str):
        raise LocalProtocolError(f"a protocol id must be a str, not {type(protocol).__name__}")
    if not protocol:
        raise LocalProtocolError("a protocol id must not be empty")
    if "\n" in protocol:
        raise LocalProtocolError(f"protocol id {protocol[:_SHOWN]!r} contains a newline")
    try:
        payload = protocol.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise LocalProtocolError(f"protocol id {protocol[:_SHOWN]!r} is not valid UTF-8") from exc
    if len(payload) > MAX_PROTOCOL_ID_LENGTH:
        raise LocalProtocolError(
            f"protocol id of {len(payload)} bytes exceeds the limit of "
            f"{MAX_PROTOCOL_ID_LENGTH} bytes"
        )
    message: bytes = mss_codec.encode_message(payload)
    return payload, message


def _decode_protocol_id(payload: bytes) -> str:
    """Validate a protocol id the remote sent (its length is already bounded by the framing)."""
    if not payload:
        raise NegotiationError("the remote sent an empty protocol id")
    if b"\n" in payload:
        raise NegotiationError(f"protocol id {_show(payload)} contains a newline")
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise NegotiationError(f"protocol id {_show(payload)} is not valid UTF-8") from exc


def _show(payload: bytes) -> str:
    """A bounded, printable rendering of received bytes for error messages."""
    text = repr(payload[:_SHOWN])
    return text + "..." if len(payload) > _SHOWN else text


def _parse_listing(payload: bytes) -> tuple[str, ...]:
    """The protocols in an ``ls`` answer's payload (its outer framing already removed)."""
    try:
        entries, end = mss_codec.split_messages(payload, 0, max_size=MAX_MESSAGE_SIZE)
    except DecodeError as exc:
        raise NegotiationError(f"malformed ls answer: {exc}") from exc
    if end != len(payload):
        raise NegotiationError("malformed ls answer: its last entry is truncated")
    if len(entries) > MAX_LS_PROTOCOLS:
        raise NegotiationError(
            f"ls answer lists {len(entries)} protocols, more than the limit of {MAX_LS_PROTOCOLS}"
        )
    return tuple(_decode_protocol_id(entry) for entry in entries)


def _encode_listing(protocols: Iterable[str]) -> bytes:
    """Our ``ls`` answer for ``protocols`` (see the module docstring for the framing)."""
    chosen = list(itertools.islice(protocols, MAX_LS_PROTOCOLS + 1))
    if len(chosen) > MAX_LS_PROTOCOLS:
        raise LocalProtocolError(f"cannot list more than {MAX_LS_PROTOCOLS} protocols")
    body = b"".join([_encode_protocol_id(protocol)[1] for protocol in chosen]) + b"\n"
    if len(body) > MAX_LS_RESPONSE_SIZE:
        raise LocalProtocolError(
            f"ls answer of {len(body)} bytes exceeds the limit of {MAX_LS_RESPONSE_SIZE} bytes"
        )
    framed: bytes = varint.encode_lp(body)
    return framed


_HEADER_MESSAGE: Final = _encode_protocol_id(PROTOCOL_ID)[1]
_NA_MESSAGE: Final = _encode_protocol_id("na")[1]
_LS_MESSAGE: Final = _encode_protocol_id("ls")[1]


class _Negotiator:
    """What both roles share: inbound buffering and framing, outbound queue, error handling."""

    def __init__(self) -> None:
        self._state = State.AWAIT_HEADER
        self._buffer = bytearray()
        self._outbound = bytearray()
        self._selected: str | None = None

    # -- public API ------------------------------------------------------------------------

    @property
    def state(self) -> State:
        """The current :class:`State`."""
        return self._state

    @property
    def selected_protocol(self) -> str | None:
        """The protocol spoken on this stream once agreed (lazy dialer: from construction)."""
        return self._selected

    @property
    def done(self) -> bool:
        """True once negotiation finished successfully (``DONE``, or ``LISTED`` for a dialer)."""
        return self._state in _FINISHED

    @property
    def bytes_buffered(self) -> int:
        """Received bytes held while waiting for the rest of a message (bounded)."""
        return len(self._buffer)

    def data_to_send(self) -> bytes:
        """Drain and return the bytes queued for the peer (``b""`` if none)."""
        data = bytes(self._outbound)
        self._outbound.clear()
        return data

    def receive_data(self, data: Buffer) -> list[Event]:
        """Feed bytes received from the peer; return the events they caused, in order.

        Raises :class:`NegotiationError` (or :class:`ProtocolNotSupported`) if the peer broke
        the protocol, :class:`LocalProtocolError` if the machine is already finished or failed.
        An error is final: events produced earlier in the same call are discarded with it.
        """
        self._require_running("receive_data")
        events: list[Event] = []
        try:
            self._receive(data, events)
        except BaseException:
            self._fail()
            raise
        return events

    def receive_eof(self) -> NoReturn:
        """The peer closed its side before negotiation finished: always raises.

        :class:`NegotiationError` while negotiating (the machine moves to ``ERROR``);
        :class:`LocalProtocolError` once finished or failed (end of stream after completion is
        the application's business, not the machine's).
        """
        self._require_running("receive_eof")
        state = self._state
        self._fail()
        raise NegotiationError(f"the stream ended during negotiation (state {state.value})")

    # -- machinery -------------------------------------------------------------------------

    def _require_running(self, what: str) -> None:
        if self._state is State.ERROR:
            raise LocalProtocolError(f"{what}() called after the negotiation failed")
        if self._state in _FINISHED:
            raise LocalProtocolError(
                f"{what}() called after the negotiation finished; later bytes belong to the "
                "application"
            )

    def _fail(self) -> None:
        self._state = State.ERROR
        self._buffer = bytearray()

    def _receive(self, data: Buffer, events: list[Event]) -> None:
        if isinstance(data, memoryview) and (data.ndim != 1 or data.format != "B"):
            data = data.cast("B")
        src: Buffer
        if self._buffer:
            self._buffer += data
            src = self._buffer
        else:
            src = data
        pos = 0
        while self._state not in _FINISHED:
            found = self._next_message(src, pos)
            if found is None:
                break
            payload, pos = found
            self._state = self._transition(self._classify(payload), payload, events)
        rest = src[pos:]
        if self._state is State.DONE:
            assert self._selected is not None
            self._buffer = bytearray()
            events.append(NegotiationComplete(self._selected, bytes(rest)))
        elif self._state is State.LISTED:
            self._buffer = bytearray()
            if len(rest):
                raise NegotiationError(
                    f"the listener sent {len(rest)} bytes after its ls answer, with no proposal "
                    "pending"
                )
        else:
            self._buffer = bytearray(rest)

    def _next_message(self, src: Buffer, pos: int) -> tuple[bytes, int] | None:
        """The payload of the complete message at ``pos`` and the offset after it, or None.

        Frames exactly one message so that application bytes behind the last negotiation
        message are never parsed as multistream framing.
        """
        limit = MAX_LS_RESPONSE_SIZE if self._state is State.AWAIT_LISTING else MAX_MESSAGE_SIZE
        try:
            head = varint.decode_uvarint(src, pos)
        except DecodeError as exc:
            raise NegotiationError(f"malformed multistream length prefix: {exc}") from exc
        if head is None:
            return None
        length, start = head
        if length > limit:
            raise NegotiationError(
                f"multistream message of {length} bytes exceeds the limit of {limit} bytes"
            )
        end: int = start + length
        if end > len(src):
            return None
        try:
            payloads, consumed = mss_codec.split_messages(bytes(src[pos:end]), 0, max_size=limit)
        except DecodeError as exc:
            raise NegotiationError(f"malformed multistream message: {exc}") from exc
        if len(payloads) != 1 or consumed != end - pos:  # pragma: no cover - codec invariant
            raise NegotiationError("malformed multistream message")
        payload: bytes = payloads[0]
        return payload, end

    def _classify(self, payload: bytes) -> _Input:
        raise NotImplementedError

    def _transition(self, kind: _Input, payload: bytes, events: list[Event]) -> State:
        raise NotImplementedError

    def _unexpected(self, kind: _Input, payload: bytes) -> NegotiationError:
        if self._state is State.AWAIT_HEADER:
            return NegotiationError(
                f"expected the header {PROTOCOL_ID!r} first, got {_show(payload)}; "
                "the peer does not speak multistream-select 1.0"
            )
        return NegotiationError(
            f"unexpected message {_show(payload)} ({kind.value}) in state {self._state.value}"
        )


class Dialer(_Negotiator):
    """The initiator's side: proposes ``protocols`` in order until the listener echoes one.

    The header and the first proposal are queued at construction, in one chunk.  With
    ``lazy=True`` (exactly one protocol) the protocol counts as selected immediately
    (:attr:`selected_protocol` is set): the driver may write application data right behind
    ``data_to_send()``, and keeps feeding received bytes until :class:`NegotiationComplete`
    (whose ``leftover`` is the first application data); an ``na`` then raises
    :class:`ProtocolNotSupported`.  With ``list_protocols=True`` an ``ls`` request goes out
    between the header and the first proposal and the answer arrives as
    :class:`ProtocolsListed`; with no protocols at all the machine ends in ``LISTED``.

    When every proposal is refused, :meth:`receive_data` raises :class:`ProtocolNotSupported`.
    """

    def __init__(
        self, protocols: Sequence[str], *, lazy: bool = False, list_protocols: bool = False
    ) -> None:
        super().__init__()
        if isinstance(protocols, (str, bytes, bytearray)):
            raise LocalProtocolError("protocols must be a sequence of protocol ids, not one string")
        self.protocols: tuple[str, ...] = tuple(protocols)
        """The protocols to propose, in order of preference."""
        self.lazy = bool(lazy)
        """Whether the protocol is assumed agreed before the echo arrives."""
        self.list_protocols = bool(list_protocols)
        """Whether an ``ls`` request is sent."""
        for protocol in self.protocols:
            if protocol in _RESERVED:
                raise LocalProtocolError(f"{protocol!r} is reserved and cannot be proposed")
        encoded = [_encode_protocol_id(protocol) for protocol in self.protocols]
        if not encoded and not self.list_protocols:
            raise LocalProtocolError("a dialer needs at least one protocol to propose")
        if self.lazy and (len(encoded) != 1 or self.list_protocols):
            raise LocalProtocolError(
                "lazy negotiation needs exactly one protocol and no ls request"
            )
        self._payloads = [payload for payload, _ in encoded]
        self._messages = [message for _, message in encoded]
        self._index = 0
        self._listed: tuple[str, ...] | None = None
        self._outbound += _HEADER_MESSAGE
        if self.list_protocols:
            self._outbound += _LS_MESSAGE
        if self._messages:
            self._outbound += self._messages[0]
        if self.lazy:
            self._selected = self.protocols[0]

    @property
    def proposal(self) -> str | None:
        """The protocol proposed and not yet answered (None when none is pending)."""
        pending = self._state in (State.AWAIT_HEADER, State.AWAIT_LISTING, State.AWAIT_ANSWER)
        if pending and self._index < len(self.protocols):
            return self.protocols[self._index]
        return None

    def _classify(self, payload: bytes) -> _Input:
        if self._state is State.AWAIT_LISTING:
            return _Input.NA if payload == _NA else _Input.LISTING
        if payload == _HEADER_PAYLOAD:
            return _Input.HEADER
        if payload == _NA:
            return _Input.NA
        if self._index < len(self._payloads) and payload == self._payloads[self._index]:
            return _Input.PROTOCOL
        if payload == _LS:
            return _Input.LS
        return _Input.OTHER

    def _transition(self, kind: _Input, payload: bytes, events: list[Event]) -> State:
        handler = _DIALER_TRANSITIONS.get((self._state, kind))
        if handler is None:
            raise self._unexpected(kind, payload)
        return handler(self, payload, events)

    def _unexpected(self, kind: _Input, payload: bytes) -> NegotiationError:
        if self._state is State.AWAIT_ANSWER and kind in (_Input.OTHER, _Input.LS):
            return NegotiationError(
                f"the listener answered {_show(payload)}, which is neither 'na' nor the echo "
                f"of our proposal {self.protocols[self._index]!r}"
            )
        return super()._unexpected(kind, payload)

    def _on_header(self, payload: bytes, events: list[Event]) -> State:
        return State.AWAIT_LISTING if self.list_protocols else State.AWAIT_ANSWER

    @property
    def listed_protocols(self) -> tuple[str, ...] | None:
        """The listener's ``ls`` answer once received (also reported as :class:`ProtocolsListed`).

        Kept here so that it survives an error raised by the same :meth:`receive_data` call
        (e.g. :class:`ProtocolNotSupported` right behind the listing), which discards that
        call's events.
        """
        return self._listed

    def _on_listing(self, payload: bytes, events: list[Event]) -> State:
        self._listed = _parse_listing(payload)
        events.append(ProtocolsListed(self._listed))
        return State.AWAIT_ANSWER if self.protocols else State.LISTED

    def _on_listing_refused(self, payload: bytes, events: list[Event]) -> State:
        self._listed = ()
        events.append(ProtocolsListed(()))
        return State.AWAIT_ANSWER if self.protocols else State.LISTED

    def _on_echo(self, payload: bytes, events: list[Event]) -> State:
        self._selected = self.protocols[self._index]
        return State.DONE

    def _on_na(self, payload: bytes, events: list[Event]) -> State:
        refused = self.protocols[self._index]
        self._index += 1
        if self._index >= len(self.protocols):
            raise ProtocolNotSupported(self.protocols)
        events.append(ProtocolRefused(refused))
        self._outbound += self._messages[self._index]
        return State.AWAIT_ANSWER


class Listener(_Negotiator):
    """The responder's side: answers proposals until one is supported.

    ``supported(protocol_id)`` is asked about each proposal at the moment it arrives, so the
    host can register and unregister handlers while streams negotiate (pass e.g. a registry's
    ``__contains__``).  ``listing()`` supplies the protocols for an ``ls`` answer (an empty list
    when omitted).  The header is queued at construction: drain ``data_to_send()`` after the
    first :meth:`receive_data` to send it in the same chunk as the first answer.

    On agreement the echo is queued and :class:`NegotiationComplete` carries any bytes the
    dialer pipelined behind its proposal.  More than ``max_na_rounds`` refused proposals and
    ``ls`` requests raise :class:`NegotiationError`.
    """

    def __init__(
        self,
        supported: Callable[[str], bool],
        *,
        listing: Callable[[], Iterable[str]] | None = None,
        max_na_rounds: int = DEFAULT_MAX_NA_ROUNDS,
    ) -> None:
        super().__init__()
        if not callable(supported):
            raise LocalProtocolError("supported must be a callable taking a protocol id")
        if listing is not None and not callable(listing):
            raise LocalProtocolError("listing must be a callable returning protocol ids")
        if not isinstance(max_na_rounds, int) or max_na_rounds < 0:
            raise LocalProtocolError(f"max_na_rounds must be an int >= 0, not {max_na_rounds!r}")
        self._supported = supported
        self._listing = listing
        self.max_na_rounds = max_na_rounds
        """How many proposals/``ls`` requests are answered without agreement before failing."""
        self._rounds = 0
        self._outbound += _HEADER_MESSAGE

    @property
    def rounds(self) -> int:
        """Proposals refused plus ``ls`` requests answered so far."""
        return self._rounds

    def _classify(self, payload: bytes) -> _Input:
        if payload == _HEADER_PAYLOAD:
            return _Input.HEADER
        if payload == _NA:
            return _Input.NA
        if payload == _LS:
            return _Input.LS
        return _Input.PROTOCOL

    def _transition(self, kind: _Input, payload: bytes, events: list[Event]) -> State:
        handler = _LISTENER_TRANSITIONS.get((self._state, kind))
        if handler is None:
            raise self._unexpected(kind, payload)
        return handler(self, payload, events)

    def _count_round(self) -> None:
        self._rounds += 1
        if self._rounds > self.max_na_rounds:
            raise NegotiationError(
                f"the dialer made more than {self.max_na_rounds} proposals or ls requests "
                "without agreeing on a protocol"
            )

    def _on_header(self, payload: bytes, events: list[Event]) -> State:
        return State.AWAIT_PROPOSAL

    def _on_ls(self, payload: bytes, events: list[Event]) -> State:
        self._count_round()
        self._outbound += _encode_listing(self._listing() if self._listing is not None else ())
        return State.AWAIT_PROPOSAL

    def _on_proposal(self, payload: bytes, events: list[Event]) -> State:
        protocol = _decode_protocol_id(payload)
        if self._supported(protocol):
            self._outbound += _encode_protocol_id(protocol)[1]
            self._selected = protocol
            return State.DONE
        self._count_round()
        self._outbound += _NA_MESSAGE
        events.append(ProtocolRefused(protocol))
        return State.AWAIT_PROPOSAL


# The legal transitions, h11-style: a (state, input) pair missing here is a protocol error.
# Each handler performs the transition's effects and returns the next state.
_DIALER_TRANSITIONS: Final[
    Mapping[tuple[State, _Input], Callable[[Dialer, bytes, list[Event]], State]]
] = {
    (State.AWAIT_HEADER, _Input.HEADER): Dialer._on_header,
    (State.AWAIT_LISTING, _Input.LISTING): Dialer._on_listing,
    (State.AWAIT_LISTING, _Input.NA): Dialer._on_listing_refused,
    (State.AWAIT_ANSWER, _Input.PROTOCOL): Dialer._on_echo,
    (State.AWAIT_ANSWER, _Input.NA): Dialer._on_na,
}

_LISTENER_TRANSITIONS: Final[
    Mapping[tuple[State, _Input], Callable[[Listener, bytes, list[Event]], State]]
] = {
    (State.AWAIT_HEADER, _Input.HEADER): Listener._on_header,
    (State.AWAIT_PROPOSAL, _Input.LS): Listener._on_ls,
    (State.AWAIT_PROPOSAL, _Input.PROTOCOL): Listener._on_proposal,
}
