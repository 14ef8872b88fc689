"""The yamux session (``/yamux/1.0.0``) as a sans-IO machine: :class:`YamuxMachine`.

It fulfils :class:`~aiolibp2p.proto.muxer.MuxerMachine` (read that module first); this docstring
records the yamux rules and the choices the spec leaves open.

Wire (libp2p/specs ``yamux/README.md``): frames with a 12-byte header, coded by the hot path
``aiolibp2p._accel.yamux`` (one call per received chunk, not per frame).  The initiator (client)
opens odd stream ids, the responder even ones; id 0 is the session (Ping, Go Away).

Streams
    :meth:`~YamuxMachine.open_stream` allocates the next id of our parity (ids are never reused).
    The SYN rides on the stream's first frame (data: 0-RTT open) or, if the stream has sent
    nothing when the driver calls :meth:`~YamuxMachine.data_to_send`, goes out as a bare Window
    Update.  A stream's half-close state is two bits, ``_LOCAL_FIN`` (we sent FIN) and
    ``_REMOTE_FIN`` (the remote did); the legal moves are::

        state        send data   recv data      send FIN        recv FIN
        open         ok          ok             -> local-fin    -> remote-fin
        local-fin    refused     ok             no-op           -> closed
        remote-fin   ok          protocol error -> closed       ignored (duplicate)
        closed: the stream is removed from the table (as after a RST either way)

    "Refused" raises :class:`~aiolibp2p.proto.muxer.StreamClosedError`; the remote's illegal
    moves raise :class:`~aiolibp2p.core.errors.YamuxError`.  A removed id is remembered by
    watermark only (our next id, the remote's highest id), so the table never keeps finished
    streams; frames for such ids are ignored, except data, which is a protocol error ("data on
    a stream the remote closed") unless we reset the stream ourselves recently: then up to the
    receive window we had granted is ignored (the frames crossed our RST).  At most 1024 such
    reset ids are remembered.

Acknowledgement (ACK)
    An inbound stream is acknowledged by the first frame we send on it: data, FIN, or the
    Window Update that the first :meth:`~YamuxMachine.consume` call sends.  So a stream the
    application reads is acknowledged on its first read, and a driver that wants to acknowledge
    a stream the moment the application accepts it calls ``consume(stream_id, 0, now)``.  The
    spec asks not to acknowledge before the application has the stream; until then the stream
    counts against ``max_ack_backlog``: a SYN that would pass it, or ``max_inbound_streams``, or
    that arrives after we sent Go Away, is answered with RST.  We keep the same bound as
    opener: past ``max_ack_backlog`` streams the remote has not acknowledged, a new outbound
    stream is *queued* (``open_stream`` still returns its id, its send capacity is 0, nothing
    goes out) until an acknowledgement (or the end of an unacknowledged stream) makes room;
    :class:`~aiolibp2p.proto.muxer.SendWindowAvailable` then announces it.  Room made by our own
    ``reset_stream``/``close_stream`` is announced by the next ``receive_data`` or
    ``handle_timer`` (``next_deadline`` returns ``0.0`` meanwhile).  A Go Away from the remote
    resets the queued streams (:class:`~aiolibp2p.proto.muxer.StreamReset`).

Flow control and auto-tuning
    Each stream's receive window starts at 256 KiB (the spec's value; ``initial_window`` above
    that is granted on the SYN/ACK).  Data beyond what we granted is a protocol error.  Window is
    granted back only as the application consumes (``consume``), and in batches: a Window Update
    goes out once at least half of the stream's current window is free again.  With
    ``auto_tune``, each such update also measures the time since the previous one; if at that
    consumption rate a whole window would be read in less than two round trips (RTT from our
    pings: one goes out as soon as the session has a timestamp), the window doubles, up to
    ``max_window``.  Window is never granted after the remote's FIN.  A Window Update that
    would push a send window past 2**32 - 1 is a protocol error.

Session
    Ping SYN is answered with ACK at once.  :meth:`~YamuxMachine.ping` sends our own;
    its answer gives :class:`~aiolibp2p.proto.muxer.PingAcknowledged`.  Keep-alive pings go
    out every ``keepalive_interval`` (one outstanding at a time); one unanswered for the pong
    timeout makes :meth:`~YamuxMachine.handle_timer` raise
    :class:`~aiolibp2p.core.errors.KeepAliveTimeout` (no Go Away is queued: the peer is gone).
    Before the machine has seen any timestamp, :meth:`~YamuxMachine.next_deadline` returns
    ``0.0`` ("now") so that the first ping, which measures the RTT, leaves at once.
    After a Go Away either way no stream can be opened; a session with Go Away sent and
    received reports :attr:`~YamuxMachine.is_closed`.

Errors
    A peer breaking the spec (bad version or type, data beyond the window, a reused, unknown or
    wrong-parity stream id, an ACK for a stream we never opened, data after FIN, stream 0
    misuse, window overflow) queues Go Away with code 1 and raises ``YamuxError(code=1)`` from
    :meth:`~YamuxMachine.receive_data`.  The machine has then failed: further input is ignored
    (``receive_data`` returns ``[]``), writes raise ``StreamClosedError``, and
    ``data_to_send`` still drains the Go Away.

Bounds: the machine buffers no stream data (payloads go out in events as they arrive; at most
11 bytes of a partial header stay between calls), the stream table holds at most
``max_inbound_streams + max_outbound_streams`` streams, at most 64 of our pings are outstanding,
and outbound bytes are only those the caller queued plus at most one reply frame per received
frame.
"""

from __future__ import annotations

from aiolibp2p._accel import yamux as _wire
from aiolibp2p.core.errors import KeepAliveTimeout, LocalProtocolError, YamuxError
from aiolibp2p.proto.muxer import (
    DataReceived,
    GoAwayReceived,
    MuxerEvent,
    MuxerMachine,
    PingAcknowledged,
    SendWindowAvailable,
    StreamClosedError,
    StreamEnded,
    StreamOpened,
    StreamReset,
)
from aiolibp2p.proto.yamux.config import SPEC_INITIAL_WINDOW, YamuxConfig

__all__ = [
    "GO_AWAY_INTERNAL_ERROR",
    "GO_AWAY_NORMAL",
    "GO_AWAY_PROTOCOL_ERROR",
    "YamuxMachine",
]

#: Go Away codes.
GO_AWAY_NORMAL = 0
GO_AWAY_PROTOCOL_ERROR = 1
GO_AWAY_INTERNAL_ERROR = 2

_DATA = 0
_WINDOW_UPDATE = 1
_PING = 2
_GO_AWAY = 3
_SYN = 0x1
_ACK = 0x2
_FIN = 0x4
_RST = 0x8
_MAX_UINT32 = 0xFFFFFFFF

# Half-close bits of a stream (see the table in the module docstring).
_LOCAL_FIN = 1
_REMOTE_FIN = 2
_CLOSED = _LOCAL_FIN | _REMOTE_FIN

#: Ids of streams we reset, remembered so that frames crossing the RST are ignored.
_MAX_RECENT_RESETS = 1024
#: Our own pings (``ping()``) outstanding at once.
_MAX_PINGS = 64

_encode_header = _wire.encode_header
_encode_data_frames = _wire.encode_data_frames
#: Payloads from this size in an immutable buffer (bytes, or a view of bytes) are queued by
#: reference, after their own header, not copied behind it (see ``data_to_send_parts``).
_GATHER_MIN = 4096


class _Stream:
    """Book-keeping of one open stream (the application data itself is never kept)."""

    __slots__ = (
        "acked",
        "buffered",
        "epoch",
        "flags",
        "inbound",
        "queued",
        "recv_credit",
        "send_window",
        "sid",
        "state",
        "window",
    )

    def __init__(self, sid: int, inbound: bool, window: int, now: float) -> None:
        self.sid = sid
        self.inbound = inbound
        self.state = 0  # _LOCAL_FIN | _REMOTE_FIN bits
        #: SYN (outbound) or ACK (inbound) still to send on the stream's next frame.
        self.flags = 0
        #: Outbound: the remote acknowledged the stream.
        self.acked = False
        #: Outbound: waiting for room in the ACK backlog; nothing sent yet.
        self.queued = False
        #: Bytes we may still send (the remote's grant).
        self.send_window = SPEC_INITIAL_WINDOW
        #: Bytes the remote may still send (our grant).
        self.recv_credit = SPEC_INITIAL_WINDOW
        #: Our receive window target (auto-tuned); ``recv_credit + buffered <= window``.
        self.window = window
        #: Bytes handed out in events that the application has not consumed yet.
        self.buffered = 0
        #: When the last Window Update went out (start of the auto-tuning measurement).
        self.epoch = now


def _u32(name: str, value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise LocalProtocolError(f"{name} must be an int, not {type(value).__name__}")
    if not 0 <= value <= _MAX_UINT32:
        raise LocalProtocolError(f"{name} {value} out of range [0, {_MAX_UINT32}]")
    return value


class YamuxMachine(MuxerMachine):
    """One yamux session.  ``is_initiator``: we dialed (client, odd stream ids)."""

    protocol_id = "/yamux/1.0.0"

    __slots__ = (
        "_auto_tune",
        "_backlog",
        "_config",
        "_deferred",
        "_failed",
        "_go_away_received",
        "_go_away_sent",
        "_inbound",
        "_interval",
        "_is_initiator",
        "_keepalive",
        "_keepalive_counter",
        "_keepalive_sent",
        "_last_inbound",
        "_max_frame",
        "_max_window",
        "_next_id",
        "_next_ping_at",
        "_open_queue",
        "_out_backlog",
        "_outbound",
        "_parts",
        "_pings",
        "_pong_timeout",
        "_reader",
        "_recent_resets",
        "_remote_parity",
        "_rtt",
        "_started",
        "_streams",
        "_syn_pending",
    )

    def __init__(self, *, is_initiator: bool, config: YamuxConfig | None = None) -> None:
        cfg = config if config is not None else YamuxConfig()
        if not isinstance(cfg, YamuxConfig):
            raise LocalProtocolError(f"config must be a YamuxConfig, not {type(cfg).__name__}")
        self._config = cfg
        self._is_initiator = bool(is_initiator)
        self._next_id = 1 if is_initiator else 2
        self._remote_parity = 0 if is_initiator else 1  # ``sid & 1`` of the remote's streams
        self._last_inbound = 0  # the highest stream id the remote opened
        self._streams: dict[int, _Stream] = {}
        self._inbound = 0
        self._outbound = 0
        self._backlog = 0  # inbound streams we have not acknowledged
        self._syn_pending: dict[int, _Stream] = {}  # outbound streams whose SYN is not out yet
        self._out_backlog = 0  # outbound streams let out and not acknowledged yet
        self._open_queue: dict[int, _Stream] = {}  # outbound streams waiting for backlog room
        self._deferred: list[MuxerEvent] = []  # events of API calls, returned by the next input
        self._recent_resets: dict[int, int] = {}  # stream id -> data bytes still ignorable
        self._reader = _wire.FrameReader(max_data=cfg.max_window)
        self._parts: list[bytes | memoryview] = []
        self._max_frame = cfg.max_frame_data
        self._max_window = cfg.max_window
        self._auto_tune = cfg.auto_tune
        self._interval = float(cfg.keepalive_interval)
        self._pong_timeout = cfg.pong_timeout
        self._failed = False
        self._go_away_sent: int | None = None
        self._go_away_received: int | None = None
        self._started = False
        self._pings: dict[int, float] = {}  # our ping() opaque values -> when sent
        self._keepalive: int | None = None  # opaque value of the outstanding keep-alive ping
        self._keepalive_sent = 0.0
        self._keepalive_counter = 0
        self._next_ping_at = 0.0
        self._rtt: float | None = None

    # ------------------------------------------------------------------------------ introspection

    @property
    def config(self) -> YamuxConfig:
        """The session's settings."""
        return self._config

    @property
    def is_initiator(self) -> bool:
        """True on the dialing side (odd stream ids)."""
        return self._is_initiator

    @property
    def is_closed(self) -> bool:
        """True after a protocol error or keep-alive timeout, or once Go Away went both ways."""
        return self._failed or (
            self._go_away_sent is not None and self._go_away_received is not None
        )

    @property
    def rtt(self) -> float | None:
        """The latest round-trip time measured with a ping, in seconds (``None`` before one)."""
        return self._rtt

    @property
    def stream_count(self) -> int:
        """Streams in the table (open in at least one direction)."""
        return len(self._streams)

    @property
    def ack_backlog(self) -> int:
        """Inbound streams we have not acknowledged yet."""
        return self._backlog

    @property
    def outbound_ack_backlog(self) -> int:
        """Our streams let out (SYN sent or due) that the remote has not acknowledged yet."""
        return self._out_backlog

    @property
    def queued_streams(self) -> int:
        """Outbound streams waiting for room in the ACK backlog before their SYN can go out."""
        return len(self._open_queue)

    @property
    def receive_buffered(self) -> int:
        """Bytes held between :meth:`receive_data` calls (a partial frame header: 0 to 11)."""
        return self._reader.buffered

    def receive_window(self, stream_id: int) -> int:
        """The current (auto-tuned) receive window of an open stream, in bytes."""
        return self._get(stream_id).window

    # ------------------------------------------------------------------------------ input

    def receive_data(self, data: bytes | bytearray | memoryview, now: float) -> list[MuxerEvent]:
        """Process every frame in ``data``; :class:`YamuxError` if the peer broke the spec."""
        if self._failed:
            return []
        if not self._started:
            self._start(now)
        try:
            items = self._reader.feed(data)
        except YamuxError as exc:
            raise self._protocol_error(str(exc)) from None
        events: list[MuxerEvent] = self._take_deferred()
        append = events.append
        streams = self._streams
        for frame_type, flags, sid, length, payload in items:
            if frame_type == _DATA:
                st = streams.get(sid)
                if (
                    st is not None
                    and not flags
                    and length <= st.recv_credit
                    and not st.state & _REMOTE_FIN
                ):
                    if length:  # the bulk path: a flag-free run of data on an open stream
                        st.recv_credit -= length
                        st.buffered += length
                        append(DataReceived(sid, payload))  # type: ignore[arg-type]
                    continue
                self._stream_frame(frame_type, flags, sid, length, payload, now, events)
            elif frame_type == _WINDOW_UPDATE:
                self._stream_frame(frame_type, flags, sid, length, None, now, events)
            elif frame_type == _PING:
                self._ping_frame(flags, sid, length, now, events)
            else:
                self._go_away_frame(sid, length, events)
        return events

    def _stream_frame(  # noqa: PLR0917 (one frame's fields, called per frame)
        self,
        frame_type: int,
        flags: int,
        sid: int,
        length: int,
        payload: bytes | None,
        now: float,
        events: list[MuxerEvent],
    ) -> None:
        """A Data or Window Update frame (or part): every case but the bulk-data fast path."""
        if sid == 0:
            kind = "data" if frame_type == _DATA else "window update"
            raise self._protocol_error(f"{kind} frame on stream 0 (the session id)")
        st = self._streams.get(sid)
        if flags & _SYN:
            st = self._accept(sid, now, events)
            if st is None:  # refused with RST: the rest of the frame crossed it
                self._frame_for_closed(frame_type, flags & ~_SYN, sid, length)
                return
        elif st is None:
            self._frame_for_closed(frame_type, flags, sid, length)
            return
        elif st.queued:
            raise self._protocol_error(f"frame for stream {sid}, which we never opened")
        elif flags & _ACK:
            if st.inbound:
                raise self._protocol_error(f"ACK for stream {sid}, which the remote opened")
            if not st.acked:
                st.acked = True
                self._out_backlog -= 1
                self._release(events)
        if frame_type == _DATA:
            if length:
                if st.state & _REMOTE_FIN:
                    raise self._protocol_error(f"data on stream {sid} after the remote closed it")
                if length > st.recv_credit:
                    raise self._protocol_error(
                        f"{length} bytes of data on stream {sid} exceed its receive window "
                        f"of {st.recv_credit} bytes"
                    )
                st.recv_credit -= length
                st.buffered += length
                events.append(DataReceived(sid, payload))  # type: ignore[arg-type]
        elif length:
            window = st.send_window + length
            if window > _MAX_UINT32:
                raise self._protocol_error(
                    f"window update of {length} bytes overflows the send window of stream "
                    f"{sid} ({st.send_window} bytes)"
                )
            if not st.send_window and not st.state & _LOCAL_FIN:
                events.append(SendWindowAvailable(sid))
            st.send_window = window
        if flags & _RST:
            self._remove(st, events)
            events.append(StreamReset(sid))
        elif flags & _FIN and not st.state & _REMOTE_FIN:
            st.state |= _REMOTE_FIN
            events.append(StreamEnded(sid))
            if st.state == _CLOSED:
                self._remove(st, events)

    def _accept(self, sid: int, now: float, events: list[MuxerEvent]) -> _Stream | None:
        """A SYN: open the inbound stream, or refuse it with RST (``None``)."""
        if sid & 1 != self._remote_parity:
            raise self._protocol_error(f"the remote opened stream {sid}, an id of our parity")
        if sid <= self._last_inbound:
            raise self._protocol_error(f"the remote reused stream id {sid}")
        self._last_inbound = sid
        cfg = self._config
        if (
            self._go_away_sent is not None
            or self._inbound >= cfg.max_inbound_streams
            or self._backlog >= cfg.max_ack_backlog
        ):
            self._parts.append(_encode_header(_WINDOW_UPDATE, _RST, sid, 0))
            self._remember_reset(sid, SPEC_INITIAL_WINDOW)
            return None
        st = _Stream(sid, True, cfg.initial_window, now)
        st.flags = _ACK
        self._streams[sid] = st
        self._inbound += 1
        self._backlog += 1
        events.append(StreamOpened(sid))
        return st

    def _frame_for_closed(self, frame_type: int, flags: int, sid: int, length: int) -> None:
        """A frame for a stream not in the table: finished, reset, or never opened."""
        if sid & 1 == self._remote_parity:
            if sid > self._last_inbound:
                raise self._protocol_error(f"frame for stream {sid}, which the remote never opened")
        elif sid >= self._next_id:
            raise self._protocol_error(f"frame for stream {sid}, which we never opened")
        allowance = self._recent_resets.get(sid)
        if allowance is not None:  # we reset it: frames in flight crossed our RST
            if frame_type == _DATA and length:
                if length > allowance:
                    raise self._protocol_error(
                        f"{length} bytes of data on reset stream {sid} exceed the "
                        f"{allowance} bytes left of its receive window"
                    )
                self._recent_resets[sid] = allowance - length
            if flags & (_FIN | _RST):
                del self._recent_resets[sid]
            return
        if frame_type == _DATA and length:
            raise self._protocol_error(f"data on stream {sid} after the remote closed it")
        # Window updates, FIN, RST or ACK on a finished stream: harmless, ignored.

    def _ping_frame(
        self, flags: int, sid: int, opaque: int, now: float, events: list[MuxerEvent]
    ) -> None:
        if sid:
            raise self._protocol_error(f"ping frame on stream {sid} (must be 0)")
        if flags & _SYN:
            self._parts.append(_encode_header(_PING, _ACK, 0, opaque))
        elif flags & _ACK:
            if opaque == self._keepalive:
                self._rtt = now - self._keepalive_sent
                self._keepalive = None
            else:
                sent = self._pings.pop(opaque, None)
                if sent is not None:
                    rtt = now - sent
                    self._rtt = rtt
                    events.append(PingAcknowledged(opaque, rtt))

    def _go_away_frame(self, sid: int, code: int, events: list[MuxerEvent]) -> None:
        if sid:
            raise self._protocol_error(f"go away frame on stream {sid} (must be 0)")
        if self._go_away_received is None:
            self._go_away_received = code
            events.append(GoAwayReceived(code))
            for st in list(self._open_queue.values()):  # they can no longer be opened
                self._remove(st, events)
                events.append(StreamReset(st.sid))

    # ------------------------------------------------------------------------------ output

    @property
    def has_output(self) -> bool:
        """Whether :meth:`data_to_send` would return bytes (frames queued, or SYNs due)."""
        return bool(self._parts) or (bool(self._syn_pending) and not self._failed)

    def data_to_send(self) -> bytes:
        """Drain the queued frames (bare SYNs of streams that sent nothing yet go last)."""
        parts = self.data_to_send_parts()
        if not parts:
            return b""
        # A lone part is always a bytes frame: a payload queued by reference follows its header.
        return parts[0] if len(parts) == 1 else b"".join(parts)  # type: ignore[return-value]

    def data_to_send_parts(self) -> list[bytes | memoryview]:
        """Drain the queued frames as :meth:`data_to_send` does, unjoined: their
        concatenation is the same bytes.  Large immutable payloads are among the parts by
        reference (for a sealer that reads several buffers per frame, e.g.
        ``NoiseTransport.encrypt_gather``)."""
        if self._syn_pending and not self._failed:
            for st in list(self._syn_pending.values()):
                self._parts.append(_encode_header(_WINDOW_UPDATE, self._take_flags(st), st.sid, 0))
        parts = self._parts
        if parts:
            self._parts = []
        return parts

    def open_stream(self, now: float) -> int:
        """Open an outbound stream and return its id; its SYN rides on its first frame.

        Past ``max_ack_backlog`` unacknowledged streams the new stream is queued (send capacity
        0 until :class:`SendWindowAvailable`); see the module docstring.  Raises
        :class:`LocalProtocolError` after Go Away (either way), after a session error, past
        ``max_outbound_streams`` or when stream ids are exhausted.
        """
        if self._failed:
            raise LocalProtocolError("the yamux session has failed")
        if self._go_away_received is not None:
            raise LocalProtocolError("the remote sent Go Away: no new streams")
        if self._go_away_sent is not None:
            raise LocalProtocolError("we sent Go Away: no new streams")
        cfg = self._config
        if self._outbound >= cfg.max_outbound_streams:
            raise LocalProtocolError(
                f"too many outbound streams (max_outbound_streams={cfg.max_outbound_streams})"
            )
        sid = self._next_id
        if sid > _MAX_UINT32:
            raise LocalProtocolError("yamux stream ids exhausted on this session")
        if not self._started:
            self._start(now)
        self._next_id = sid + 2
        st = _Stream(sid, False, cfg.initial_window, now)
        self._streams[sid] = st
        self._outbound += 1
        if self._out_backlog < cfg.max_ack_backlog:
            self._let_out(st)
        else:
            st.queued = True
            st.send_window = st.recv_credit = 0
            self._open_queue[sid] = st
        return sid

    def send_data(self, stream_id: int, data: bytes | bytearray | memoryview, now: float) -> int:
        """Queue as much of ``data`` as the send window allows; return the bytes taken."""
        st = self._writable(stream_id)
        if type(data) is bytes:
            size = len(data)
        else:
            data = memoryview(data).cast("B")
            size = data.nbytes
        window = st.send_window
        taken = size if size <= window else window
        if taken <= 0:
            return 0
        if taken < size:
            data = memoryview(data)[:taken]
        flags = self._take_flags(st) if st.flags else 0
        if taken >= _GATHER_MIN and (
            type(data) is bytes or (type(data) is memoryview and type(data.obj) is bytes)
        ):
            # Nobody can change these bytes: queue them by reference, each frame after its header
            # (a view of our own, so a caller releasing theirs cannot pull the bytes away).
            view = memoryview(data)
            append = self._parts.append
            max_frame = self._max_frame
            for start in range(0, taken, max_frame):
                chunk = view[start : start + max_frame]
                append(_encode_header(_DATA, flags if not start else 0, stream_id, len(chunk)))
                append(chunk)
        else:
            self._parts.append(_encode_data_frames(stream_id, flags, data, self._max_frame))
        st.send_window = window - taken
        return taken

    def send_capacity(self, stream_id: int) -> int:
        """How many bytes :meth:`send_data` would take now (0 on a stream closed for writing)."""
        st = self._streams.get(stream_id)
        if st is None:
            self._check_known(stream_id)
            return 0
        if st.state & _LOCAL_FIN or self._failed:
            return 0
        return st.send_window

    def close_stream(self, stream_id: int, now: float) -> None:
        """Half-close: send FIN (on a Window Update).  A no-op if already closed or reset."""
        st = self._streams.get(stream_id)
        if st is None:
            self._check_known(stream_id)
            return
        if st.state & _LOCAL_FIN:
            return
        if st.queued:  # the FIN goes out with the SYN
            st.state |= _LOCAL_FIN
            return
        flags = (self._take_flags(st) if st.flags else 0) | _FIN
        if not self._failed:
            self._parts.append(_encode_header(_WINDOW_UPDATE, flags, stream_id, 0))
        st.state |= _LOCAL_FIN
        if st.state == _CLOSED:
            self._remove(st, self._deferred)

    def reset_stream(self, stream_id: int, now: float) -> None:
        """Send RST and forget the stream.  A no-op if it is already gone."""
        st = self._streams.get(stream_id)
        if st is None:
            self._check_known(stream_id)
            return
        if st.queued or st.flags & _SYN or self._failed:  # the remote never heard of it
            self._remove(st, self._deferred)
            return
        self._parts.append(_encode_header(_WINDOW_UPDATE, _RST, stream_id, 0))
        if not st.state & _REMOTE_FIN:
            self._remember_reset(stream_id, st.recv_credit)
        self._remove(st, self._deferred)

    def consume(self, stream_id: int, nbytes: int, now: float) -> None:
        """The application consumed ``nbytes``; grant window back (batched, auto-tuned).

        The first call on an inbound stream acknowledges it (``nbytes`` may be 0 for just
        that).  Raises :class:`LocalProtocolError` for more bytes than were handed out.
        """
        if not isinstance(nbytes, int) or nbytes < 0:
            raise LocalProtocolError(f"consume needs a byte count >= 0, got {nbytes!r}")
        st = self._streams.get(stream_id)
        if st is None:
            self._check_known(stream_id)
            return
        if nbytes > st.buffered:
            raise LocalProtocolError(
                f"consumed {nbytes} bytes of stream {stream_id} but only {st.buffered} "
                "are unconsumed"
            )
        st.buffered -= nbytes
        if self._failed or st.queued:
            return
        if st.flags or (  # acknowledge on the first consume, else grant in half windows
            not st.state & _REMOTE_FIN
            and st.window - st.recv_credit - st.buffered >= st.window >> 1
        ):
            self._window_update(st, now)

    def go_away(self, code: int = GO_AWAY_NORMAL) -> None:
        """Queue Go Away with ``code`` (once): the remote may open no new streams after it."""
        _u32("go away code", code)
        if self._go_away_sent is not None or self._failed:
            return
        self._go_away_sent = code
        self._parts.append(_encode_header(_GO_AWAY, 0, 0, code))

    def ping(self, opaque: int, now: float) -> None:
        """Send a ping carrying ``opaque`` (a 32-bit value); the answer gives
        :class:`PingAcknowledged`.  At most 64 may be outstanding, each value once."""
        _u32("ping opaque value", opaque)
        if self._failed:
            raise LocalProtocolError("the yamux session has failed")
        if opaque in self._pings or opaque == self._keepalive:
            raise LocalProtocolError(f"a ping with opaque value {opaque} is already outstanding")
        if len(self._pings) >= _MAX_PINGS:
            raise LocalProtocolError(f"too many outstanding pings (at most {_MAX_PINGS})")
        if not self._started:
            self._start(now)
        self._pings[opaque] = now
        self._parts.append(_encode_header(_PING, _SYN, 0, opaque))

    # ------------------------------------------------------------------------------ timers

    def next_deadline(self) -> float | None:
        """When :meth:`handle_timer` must run: the next keep-alive ping or pong deadline.

        ``0.0`` (run it now) until the machine has seen a timestamp, so the first ping (the RTT
        for auto-tuning) goes out, and while events of API calls wait to be returned;
        ``None`` when nothing is scheduled.
        """
        if self._failed:
            return None
        if self._deferred:
            return 0.0
        if not self._started:
            return 0.0 if self._interval or self._auto_tune else None
        if not self._interval:
            return None
        if self._keepalive is not None:
            return self._keepalive_sent + self._pong_timeout
        return self._next_ping_at

    def handle_timer(self, now: float) -> list[MuxerEvent]:
        """Send the first ping or a due keep-alive ping; return events deferred by API calls.

        Raises :class:`KeepAliveTimeout` when the outstanding keep-alive ping went unanswered
        for the pong timeout; the session has then failed (the driver closes the connection).
        """
        if self._failed:
            return []
        events = self._take_deferred()
        if not self._started:
            self._start(now)
        elif not self._interval:
            pass
        elif self._keepalive is not None:
            waited = now - self._keepalive_sent
            if waited >= self._pong_timeout:
                self._failed = True
                raise KeepAliveTimeout(f"keep-alive ping unanswered after {waited:.3f} s")
        elif now >= self._next_ping_at:
            self._send_keepalive(now)
        return events

    # ------------------------------------------------------------------------------ internals

    def _start(self, now: float) -> None:
        self._started = True
        if self._interval or self._auto_tune:
            self._send_keepalive(now)

    def _send_keepalive(self, now: float) -> None:
        opaque = self._keepalive_counter
        while opaque in self._pings:
            opaque = (opaque + 1) & _MAX_UINT32
        self._keepalive_counter = (opaque + 1) & _MAX_UINT32
        self._keepalive = opaque
        self._keepalive_sent = now
        self._next_ping_at = now + self._interval
        self._parts.append(_encode_header(_PING, _SYN, 0, opaque))

    def _window_update(self, st: _Stream, now: float) -> None:
        """Grant the stream's free window (growing it first if auto-tuning says so)."""
        window = st.window
        free = window - st.recv_credit - st.buffered
        if st.state & _REMOTE_FIN:
            free = 0  # no more data will come
        elif free >= window >> 1:
            rtt = self._rtt
            if (
                self._auto_tune
                and rtt is not None
                and window < self._max_window
                and (now - st.epoch) * window < 2.0 * rtt * free
            ):
                # At this rate a whole window is read in under two round trips: double it.
                grow = min(window, self._max_window - window)
                st.window = window + grow
                free += grow
        flags = self._take_flags(st) if st.flags else 0
        if free <= 0 and not flags:
            return
        st.recv_credit += free
        st.epoch = now
        self._parts.append(_encode_header(_WINDOW_UPDATE, flags, st.sid, free))

    def _take_flags(self, st: _Stream) -> int:
        """The SYN/ACK to put on the stream's next frame (then cleared)."""
        flags = st.flags
        st.flags = 0
        if st.inbound:
            self._backlog -= 1
        else:
            pending = self._syn_pending
            pending.pop(st.sid, None)
            if not pending:
                pending.clear()  # frees the emptied table (idle sessions hold thousands of these)
        return flags

    def _remove(self, st: _Stream, events: list[MuxerEvent]) -> None:
        """Forget a finished or reset stream; room it frees in the ACK backlog goes to queued
        streams (their events into ``events``)."""
        streams = self._streams
        del streams[st.sid]
        if not streams:
            streams.clear()  # frees the emptied table: an idle session keeps no stream storage
        if st.inbound:
            self._inbound -= 1
            if st.flags:
                self._backlog -= 1
            return
        self._outbound -= 1
        if st.queued:
            del self._open_queue[st.sid]
            return
        if st.flags:
            del self._syn_pending[st.sid]
            if not self._syn_pending:
                self._syn_pending.clear()
        if not st.acked:
            self._out_backlog -= 1
            self._release(events)

    def _let_out(self, st: _Stream) -> None:
        """Let an outbound stream's SYN out (now, or on its first frame)."""
        self._out_backlog += 1
        st.queued = False
        st.send_window = st.recv_credit = SPEC_INITIAL_WINDOW
        extra = st.window - SPEC_INITIAL_WINDOW
        fin = _FIN if st.state & _LOCAL_FIN else 0
        if extra or fin:  # announce a larger window, or the FIN of a queued stream, with the SYN
            self._parts.append(_encode_header(_WINDOW_UPDATE, _SYN | fin, st.sid, extra))
            st.recv_credit += extra
        else:
            st.flags = _SYN
            self._syn_pending[st.sid] = st

    def _release(self, events: list[MuxerEvent]) -> None:
        """Let queued streams out while the ACK backlog has room."""
        queue = self._open_queue
        limit = self._config.max_ack_backlog
        while queue and self._out_backlog < limit:
            st = queue.pop(next(iter(queue)))
            self._let_out(st)
            if not st.state & _LOCAL_FIN:
                events.append(SendWindowAvailable(st.sid))

    def _take_deferred(self) -> list[MuxerEvent]:
        events = self._deferred
        if events:
            self._deferred = []
            return events
        return []

    def _remember_reset(self, sid: int, allowance: int) -> None:
        resets = self._recent_resets
        if len(resets) >= _MAX_RECENT_RESETS:
            del resets[next(iter(resets))]  # the oldest
        resets[sid] = allowance

    def _protocol_error(self, message: str) -> YamuxError:
        """Queue Go Away(protocol error) and fail the session; the caller raises the result."""
        if not self._failed:
            self._failed = True
            self._parts.append(_encode_header(_GO_AWAY, 0, 0, GO_AWAY_PROTOCOL_ERROR))
        return YamuxError(message, code=GO_AWAY_PROTOCOL_ERROR)

    def _check_known(self, stream_id: int) -> None:
        """Raise :class:`LocalProtocolError` unless ``stream_id`` was ever a stream here."""
        if isinstance(stream_id, int) and 0 < stream_id <= _MAX_UINT32:
            if stream_id & 1 == self._remote_parity:
                if stream_id <= self._last_inbound:
                    return
            elif stream_id < self._next_id:
                return
        raise LocalProtocolError(f"no such yamux stream: {stream_id!r}")

    def _get(self, stream_id: int) -> _Stream:
        st = self._streams.get(stream_id)
        if st is None:
            self._check_known(stream_id)
            raise StreamClosedError(f"stream {stream_id} is closed")
        return st

    def _writable(self, stream_id: int) -> _Stream:
        st = self._get(stream_id)
        if self._failed:
            raise StreamClosedError("the yamux session has failed")
        if st.state & _LOCAL_FIN:
            raise StreamClosedError(f"stream {stream_id} is closed for writing")
        return st
