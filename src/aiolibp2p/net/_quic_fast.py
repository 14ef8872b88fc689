"""Lean paths through aioquic's ``QuicConnection`` for bulk 1-RTT stream traffic.

aioquic builds and parses every packet through general machinery (a packet builder with
per-frame checks, a header parser for every packet type, a frame-handler table, header
protection by copying the packet three times).  For the packets a bulk transfer consists of
(short-header packets carrying one STREAM frame, sent and received on an established, validated
path) :class:`FastQuicConnection` does the same work in fewer steps:

* sending: :meth:`_write_application` builds full-size packets of one STREAM frame directly
  (header, frame, AEAD, header protection) and hands them to aioquic's packet builder as built
  packets, so that aioquic's loss recovery, congestion control and pacing see them exactly as
  their own;
* receiving: :meth:`receive_datagram` decrypts a short-header packet on the active path itself
  and keeps aioquic's bookkeeping (duplicates, ACK ranges, spin bit, idle timer), and hands
  STREAM frames straight to the stream; any other frame goes through aioquic's frame handlers;
* a stream's unacknowledged bytes are kept as the chunks written (:class:`SendBuffer`), not in
  one bytearray that is copied whole whenever it grows, and the oldest bytes' acknowledgement
  releases them in place.

Anything else (handshake, key updates, migration, ACK-eliciting control frames, resets, the
last partial packet of a burst...) falls through to aioquic unchanged, before any state is
touched.  The wire format is identical to aioquic's (the tests compare the bytes).
"""

from __future__ import annotations

import dataclasses
import functools
from bisect import bisect_right
from typing import Any

from aioquic import tls
from aioquic._buffer import Buffer, BufferReadError
from aioquic.quic.connection import (
    END_STATES,
    QuicConnection,
    QuicConnectionError,
    QuicConnectionState,
    QuicReceiveContext,
)
from aioquic.quic.packet import (
    QuicErrorCode,
    QuicPacketType,
    QuicStreamFrame,
    decode_packet_number,
)
from aioquic.quic.packet_builder import (
    PACKET_NUMBER_SEND_SIZE,
    QuicDeliveryState,
    QuicPacketBuilder,
    QuicSentPacket,
)
from aioquic.quic.recovery import MAX_ACK_RANGES
from aioquic.quic.stream import FinalSizeError, StreamFinishedError

__all__ = ["FastQuicConnection", "fast_path_supported"]

_ONE_RTT = tls.Epoch.ONE_RTT
_ZERO_RTT = tls.Epoch.ZERO_RTT
_ONE_RTT_PACKET = QuicPacketType.ONE_RTT
_CONNECTED = QuicConnectionState.CONNECTED
_ACKED = QuicDeliveryState.ACKED
_TAG = 16
_SAMPLE = 16
_PN_SEND = 2  # aioquic sends 2-byte packet numbers
_CHACHA_ZEROS = bytes(5)
_UINT_VAR_MAX = (1 << 62) - 1


def _varint(value: int) -> bytes:
    if value <= 0x3F:
        return bytes((value,))
    if value <= 0x3FFF:
        return (value | 0x4000).to_bytes(2, "big")
    if value <= 0x3FFFFFFF:
        return (value | 0x80000000).to_bytes(4, "big")
    return (value | 0xC000000000000000).to_bytes(8, "big")


def _keys(context: Any) -> tuple[Any, int, Any, bool] | None:
    """(AEAD object, IV, header-protection cipher context, is ChaCha20) of aioquic's
    ``CryptoContext``, or None when its crypto is not the ``cryptography``-based one."""
    aead = getattr(context.aead, "_aead", None)
    iv = getattr(context.aead, "_iv", None)
    hp = getattr(context.hp, "_encryptor", None)
    chacha = getattr(context.hp, "_is_chacha20", None)
    if aead is None or not isinstance(iv, int) or hp is None or chacha is None:
        return None
    return aead, iv, hp, chacha


def fast_path_supported() -> bool:
    """Whether this aioquic has the internals the lean paths build on (else aioquic's own
    paths run, unchanged)."""
    methods = (
        "_write_application",
        "_payload_received",
        "_assert_stream_can_receive",
        "_get_or_create_stream",
        "_idle_timeout",
    )
    return (
        all(callable(getattr(QuicConnection, name, None)) for name in methods)
        and PACKET_NUMBER_SEND_SIZE == _PN_SEND
        and callable(getattr(QuicPacketBuilder, "_flush_current_datagram", None))
    )


_SUPPORTED = fast_path_supported()

_SENT_FIELDS = (
    "epoch",
    "in_flight",
    "is_ack_eliciting",
    "is_crypto_packet",
    "packet_number",
    "packet_type",
    "sent_time",
    "sent_bytes",
    "delivery_handlers",
    "quic_logger_frames",
)
#: QuicSentPacket is a plain dataclass: fill its __dict__ at once (half the cost of __init__).
_SENT_BY_DICT = (
    dataclasses.is_dataclass(QuicSentPacket)
    and tuple(f.name for f in dataclasses.fields(QuicSentPacket)) == _SENT_FIELDS
    and "__slots__" not in vars(QuicSentPacket)
)
_new = object.__new__


#: aioquic fills a packet's ``quic_logger_frames`` only when the connection has a QUIC logger,
#: which rules the lean paths out: their packets share this (always empty) list.
_NO_LOG_FRAMES: list[Any] = []


def _sent_packet(pn: int, nbytes: int, handlers: Any) -> QuicSentPacket:
    """The record of one 1-RTT packet of STREAM data, as aioquic's builder makes it (fewer
    objects for the garbage collector to track: a sender keeps thousands in flight)."""
    if _SENT_BY_DICT:
        packet: QuicSentPacket = _new(QuicSentPacket)
        packet.__dict__ = {
            "epoch": _ONE_RTT,
            "in_flight": True,
            "is_ack_eliciting": True,
            "is_crypto_packet": False,
            "packet_number": pn,
            "packet_type": _ONE_RTT_PACKET,
            "sent_time": None,
            "sent_bytes": nbytes,
            "delivery_handlers": handlers,
            "quic_logger_frames": _NO_LOG_FRAMES,
        }
        return packet
    return QuicSentPacket(  # pragma: no cover - another aioquic's QuicSentPacket
        epoch=_ONE_RTT,
        in_flight=True,
        is_ack_eliciting=True,
        is_crypto_packet=False,
        packet_number=pn,
        packet_type=_ONE_RTT_PACKET,
        sent_bytes=nbytes,
        delivery_handlers=list(handlers),
    )


#: Instance attributes of aioquic's connection the lean paths read or write.
_STATE = (
    "_streams_queue",
    "_spin_highest_pn",
    "_remote_max_data",
    "_remote_max_data_used",
    "_pacing_at",
    "_ack_delay",
    "_host_cids",
    "_retire_connection_ids",
    "_streams_blocked_pending",
    "_ping_pending",
    "_probe_pending",
    "_datagrams_pending",
    "_handshake_done_pending",
    "_crypto_streams",
    "_local_max_data",
    "_events",
    "_close_at",
    "_ack_eliciting_sent_since_receipt",
)


class FastQuicConnection(QuicConnection):
    """aioquic's ``QuicConnection`` with lean paths for bulk 1-RTT stream packets."""

    #: Off switch (tests compare both paths; a bug report can rule the lean paths out).
    fast_path = _SUPPORTED
    #: Packets the lean paths built / took apart (diagnostics and tests).
    lean_sent = 0
    lean_received = 0
    _fast_idle_now = -1.0
    _fast_idle_at = 0.0
    #: (AEAD, header protection, their _keys()) of the 1-RTT receive context last used.
    _fast_recv_keys: tuple[Any, Any, tuple[Any, int, Any, bool]] | None = None

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        pacer = self._loss._pacer
        if not all(hasattr(self, name) for name in _STATE) or not all(
            hasattr(pacer, name) for name in ("packet_time", "bucket_time", "update_bucket")
        ):  # pragma: no cover - another aioquic
            self.fast_path = False

    # ------------------------------------------------------------------------------ sending

    def _write_application(self, builder: QuicPacketBuilder, network_path: Any, now: float) -> None:
        crypto = self._cryptos[_ONE_RTT]
        if not (self.fast_path and self._handshake_complete and crypto.send.is_valid()):
            super()._write_application(builder, network_path, now)
            return
        space = self._spaces[_ONE_RTT]
        if not self._only_stream_data(builder, network_path, crypto, space, now):
            # An ACK or a control frame is due: aioquic writes one packet with it (and stream
            # data), then the lean path goes on with the rest of the burst.
            if not self._one_packet_by_aioquic(builder, network_path, now):
                return
            if not self._only_stream_data(builder, network_path, crypto, space, now):
                super()._write_application(builder, network_path, now)  # not a one-off
                return
        keys = _keys(crypto.send)
        if keys is None:
            super()._write_application(builder, network_path, now)
            return
        aead, iv, hp, chacha = keys
        size = self._max_datagram_size
        peer_cid = builder._peer_cid
        header_size = 1 + len(peer_cid) + _PN_SEND
        first_byte = 0x40 | (builder._spin_bit << 5) | (crypto.key_phase << 2) | (_PN_SEND - 1)
        payload_room = size - header_size - _TAG
        packets = builder._packets
        datagrams = builder._datagrams
        queue = self._streams_queue
        max_flight = builder.max_flight_bytes
        # Pacing as aioquic's pacer does it (ACKs are not due here, so it always applies),
        # with its bucket in a local for the burst.
        pacer = self._loss._pacer
        packet_time = pacer.packet_time
        bucket = 0.0
        if packet_time is not None:
            pacer.update_bucket(now=now)
            bucket = pacer.bucket_time
        handoff = False
        while True:
            if max_flight is not None and max_flight - builder._flight_bytes < size:
                break  # the congestion window has no room for another full packet
            if packet_time is not None and bucket <= 0:
                self._pacing_at = now + packet_time
                break
            stream = None
            for candidate in queue:
                if not candidate.is_blocked and len(candidate.sender._pending):
                    stream = candidate
                    break
            if stream is None:
                # Nothing but FINs without data (aioquic writes them), blocked streams or
                # nothing at all (aioquic would build an empty packet and drop it).
                handoff = any(s.sender._pending_eof for s in queue)
                break
            sender = stream.sender
            sid: int = stream.stream_id  # type: ignore[assignment]  # always set for ours
            first_range = sender._pending[0]
            start = first_range.start
            sid_bytes = _varint(sid)
            offset_bytes = _varint(start) if start else b""
            room = payload_room - 3 - len(sid_bytes) - len(offset_bytes)
            stop = min(
                first_range.stop,
                start + room,
                sender.highest_offset + self._remote_max_data - self._remote_max_data_used,
                stream.max_stream_data_remote,
            )
            if stop <= start or (stop - start < room and len(queue) > 1):
                # Flow control, or a short frame that aioquic would complete with other
                # streams' data: aioquic decides from here.
                handoff = True
                break
            fin = sender._buffer_fin == stop
            frame_type = 0x0A | (4 if start else 0) | (1 if fin else 0)
            buffer: Any = sender._buffer
            base = sender._buffer_start
            payload = b"".join(
                (
                    bytes((frame_type,)),
                    sid_bytes,
                    offset_bytes,
                    ((stop - start) | 0x4000).to_bytes(2, "big"),
                    buffer.take(start - base, stop - base)
                    if type(buffer) is SendBuffer
                    else buffer[start - base : stop - base],
                )
            )
            # Stream state, as aioquic's get_frame() leaves it.
            sender._pending.subtract(start, stop)
            if stop > sender.highest_offset:
                self._remote_max_data_used += stop - sender.highest_offset
                sender.highest_offset = stop
            if fin:
                sender._pending_eof = False
            pn = builder._packet_number
            header = bytes((first_byte,)) + peer_cid + (pn & 0xFFFF).to_bytes(2, "big")
            sealed = aead.encrypt((iv ^ pn).to_bytes(12, "big"), payload, header)
            # Header protection (RFC 9001 section 5.4): the sample starts 4 bytes after the
            # packet number's first byte.
            sample = sealed[4 - _PN_SEND : 4 - _PN_SEND + _SAMPLE]
            if chacha:
                hp.reset_nonce(sample)
                mask = hp.update(_CHACHA_ZEROS)
            else:
                mask = hp.update(sample)
            datagram = b"".join(
                (
                    bytes((first_byte ^ (mask[0] & 0x1F),)),
                    peer_cid,
                    ((pn & 0xFFFF) ^ ((mask[1] << 8) | mask[2])).to_bytes(2, "big"),
                    sealed,
                )
            )
            nbytes = len(datagram)
            handler = sender.__dict__.get("_lean_delivered")
            if handler is None:
                handler = sender.__dict__["_lean_delivered"] = functools.partial(_delivered, sender)
            packets.append(_sent_packet(pn, nbytes, ((handler, (start, stop, fin)),)))
            datagrams.append(datagram)
            builder._flight_bytes += nbytes
            builder._total_bytes += nbytes
            builder._packet_number = pn + 1
            self.lean_sent += 1
            if len(queue) > 1:  # served streams go to the end, as aioquic orders them
                queue.remove(stream)
                queue.append(stream)
            if packet_time is not None:
                bucket = 0.0 if bucket < packet_time else bucket - packet_time
        if packet_time is not None:
            pacer.bucket_time = bucket
        if handoff:
            super()._write_application(builder, network_path, now)

    def _only_stream_data(
        self, builder: QuicPacketBuilder, network_path: Any, crypto: Any, space: Any, now: float
    ) -> bool:
        """Whether this round has nothing to send but STREAM frames."""
        return (
            (space.ack_at is None or space.ack_at > now)
            and self._nothing_else_to_send(builder, network_path, crypto)
            and not self._limits_due(space)
        )

    def _one_packet_by_aioquic(
        self, builder: QuicPacketBuilder, network_path: Any, now: float
    ) -> bool:
        """Let aioquic build the next packet only (its frames are due first); returns whether
        the lean path may go on (else aioquic has built all it will this round)."""
        limit = builder.max_flight_bytes
        size = self._max_datagram_size
        if (
            limit is None
            or limit - builder._flight_bytes < 2 * size
            or builder._packet is not None
            or builder._buffer.tell()
            or builder.max_total_bytes is not None
        ):
            super()._write_application(builder, network_path, now)
            return False
        # Room for one datagram in flight: aioquic fills one packet, then finds no room.
        builder.max_flight_bytes = builder._flight_bytes + size
        try:
            super()._write_application(builder, network_path, now)
        finally:
            builder.max_flight_bytes = limit
        if self._pacing_at is not None:
            return False
        if builder._packet is not None:
            if not builder.packet_is_empty:
                return False  # (frames outside flight control): the builder ends it
            builder._end_packet()  # the empty packet aioquic started when it found no room
        if builder._buffer.tell():
            return False
        builder._datagram_init = True  # the next datagram recomputes its room
        return True

    def _nothing_else_to_send(
        self, builder: QuicPacketBuilder, network_path: Any, crypto: Any
    ) -> bool:
        """No frame but STREAM data is due (else aioquic writes this round)."""
        if (
            builder._packet is not None
            or builder._buffer.tell()
            or builder.max_total_bytes is not None
            or builder._datagram_needs_padding
            or builder._quic_logger is not None
            or crypto._update_key_requested
            or not network_path.is_validated
            or network_path.remote_challenges
            or self._handshake_done_pending
            or self._retire_connection_ids
            or self._streams_blocked_pending
            or self._ping_pending
            or self._probe_pending
            or self._datagrams_pending
            or not self._crypto_streams[_ONE_RTT].sender.buffer_is_empty
        ):
            return False
        for cid in self._host_cids:
            if not cid.was_sent:
                return False
        for stream in self._streams_queue:
            if stream.is_finished or stream.receiver.stop_pending or stream.sender.reset_pending:
                return False
        return True

    def _limits_due(self, space: Any) -> bool:
        """Whether a MAX_DATA, MAX_STREAMS or MAX_STREAM_DATA frame is due (aioquic's rules; a
        subclass that moves the windows by its own rule overrides this)."""
        max_data = self._local_max_data
        if max_data.used * 2 > max_data.value or max_data.value != max_data.sent:
            return True
        if self._stream_limits_due():
            return True
        for stream in self._streams.values():
            local = stream.max_stream_data_local
            if local and (
                stream.receiver.highest_offset * 2 > local
                or stream.max_stream_data_local_sent != local
            ):
                return True
        return False

    def _stream_limits_due(self) -> bool:
        """MAX_STREAMS due, by aioquic's batching rule."""
        for limit in (self._local_max_streams_bidi, self._local_max_streams_uni):
            if limit.value != limit.sent and limit.sent - limit.used < limit.value - limit.sent:
                return True
        return False

    # ------------------------------------------------------------------------------ streams

    def _get_or_create_stream(self, frame_type: int, stream_id: int) -> Any:
        return _chunked(super()._get_or_create_stream(frame_type, stream_id))

    def _get_or_create_stream_for_send(self, stream_id: int) -> Any:
        return _chunked(super()._get_or_create_stream_for_send(stream_id))

    # ---------------------------------------------------------------------------- receiving

    def receive_datagram(self, data: bytes, addr: Any, now: float) -> None:
        if (
            self.fast_path
            and data
            and not data[0] & 0x80
            and self._state is _CONNECTED
            and self._handshake_confirmed
            and self._quic_logger is None
            and self._fast_receive(data, addr, now)
        ):
            return
        super().receive_datagram(data, addr, now)

    def _fast_receive(self, data: bytes, addr: Any, now: float) -> bool:
        """Handle one short-header datagram on the active path; False: aioquic must (nothing
        was changed)."""
        path = self._network_paths[0]
        cid = self.host_cid
        pn_offset = 1 + len(cid)
        if (
            path.addr != addr
            or not path.is_validated
            or len(data) < pn_offset + 4 + _SAMPLE
            or data[1:pn_offset] != cid
        ):
            return False
        crypto = self._cryptos[_ONE_RTT]
        context = crypto.recv
        if context.aead is None or self._cryptos[_ZERO_RTT].recv.is_valid():
            return False
        cached = self._fast_recv_keys
        if cached is not None and cached[0] is context.aead and cached[1] is context.hp:
            keys = cached[2]
        else:
            found = _keys(context)
            if found is None:
                return False
            keys = found
            self._fast_recv_keys = (context.aead, context.hp, keys)
        aead, iv, hp, chacha = keys
        sample = data[pn_offset + 4 : pn_offset + 4 + _SAMPLE]
        if chacha:
            hp.reset_nonce(sample)
            mask = hp.update(_CHACHA_ZEROS)
        else:
            mask = hp.update(sample)
        first = data[0] ^ (mask[0] & 0x1F)
        if (first >> 2) & 1 != context.key_phase or first & 0x18:
            return False  # a key update, or reserved bits set: aioquic's rules
        pn_length = (first & 0x03) + 1
        pn_end = pn_offset + pn_length
        truncated = int.from_bytes(data[pn_offset:pn_end], "big") ^ int.from_bytes(
            mask[1 : 1 + pn_length], "big"
        )
        space = self._spaces[_ONE_RTT]
        pn = decode_packet_number(truncated, pn_length * 8, space.expected_packet_number)
        header = b"".join(
            (bytes((first,)), data[1:pn_offset], truncated.to_bytes(pn_length, "big"))
        )
        try:
            plain = aead.decrypt((iv ^ pn).to_bytes(12, "big"), data[pn_end:], header)
        except Exception:
            return False  # aioquic drops it (and logs why)
        if pn in space.received_packets:
            return True  # a duplicate (RFC 9000 section 12.3)
        if pn > space.expected_packet_number:
            space.expected_packet_number = pn + 1
        if pn > self._spin_highest_pn:
            spin = bool(first & 0x20)
            self._spin_bit = not spin if self._is_client else spin
            self._spin_highest_pn = pn
        is_ack_eliciting = False
        try:
            is_ack_eliciting = self._fast_payload(plain, path, cid, now)
        except QuicConnectionError as exc:
            self._logger.warning(exc)
            self.close(
                error_code=exc.error_code,
                frame_type=exc.frame_type,
                reason_phrase=exc.reason_phrase,
            )
        if self._state in END_STATES or self._close_pending:
            return True
        # The idle deadline moves with every packet; datagrams read in one batch share `now`,
        # so it is computed once per batch.
        if now != self._fast_idle_now:
            self._fast_idle_now = now
            self._fast_idle_at = now + self._idle_timeout()
        self._close_at = self._fast_idle_at
        self._ack_eliciting_sent_since_receipt = False
        if pn > space.largest_received_packet:
            space.largest_received_packet = pn
            space.largest_received_time = now
        space.ack_queue.add(pn)
        space.received_packets.add(pn)
        if len(space.ack_queue) > MAX_ACK_RANGES:
            space.ack_queue.shift()
        if is_ack_eliciting and space.ack_at is None:
            space.ack_at = now + self._ack_delay
        self.lean_received += 1
        return True

    def _fast_payload(self, plain: bytes, path: Any, cid: bytes, now: float) -> bool:
        """The frames of one 1-RTT packet; returns whether it was ACK-eliciting.

        A packet that is one STREAM frame (the bulk of a transfer) is handled here; anything
        else goes to aioquic's frame handlers."""
        frame_type = plain[0] if plain else 0
        if frame_type & 0xF8 != 0x08:
            return self._frames_by_aioquic(plain, path, cid, now)
        return self._fast_stream_frame(frame_type, plain, path, cid, now)

    def _frames_by_aioquic(self, plain: bytes, path: Any, cid: bytes, now: float) -> bool:
        """aioquic's frame handlers for a 1-RTT payload; returns whether it was ACK-eliciting."""
        context = QuicReceiveContext(
            epoch=_ONE_RTT,
            host_cid=cid,
            network_path=path,
            quic_logger_frames=None,
            time=now,
            version=None,
        )
        return self._payload_received(context, plain)[0]

    def _fast_stream_frame(
        self, frame_type: int, plain: bytes, path: Any, cid: bytes, now: float
    ) -> bool:
        buf = Buffer(data=plain)
        try:
            buf.seek(1)
            stream_id = buf.pull_uint_var()
            offset = buf.pull_uint_var() if frame_type & 4 else 0
            length = buf.pull_uint_var() if frame_type & 2 else len(plain) - buf.tell()
            start = buf.tell()
            end = start + length
            if end > len(plain):
                raise BufferReadError
        except BufferReadError:
            raise QuicConnectionError(
                error_code=QuicErrorCode.FRAME_ENCODING_ERROR,
                frame_type=frame_type,
                reason_phrase="Failed to parse frame",
            ) from None
        if end != len(plain) and any(plain[end:]):
            # More frames follow (not only PADDING): aioquic parses the whole packet.
            return self._frames_by_aioquic(plain, path, cid, now)
        if offset + length > _UINT_VAR_MAX:
            raise QuicConnectionError(
                error_code=QuicErrorCode.FRAME_ENCODING_ERROR,
                frame_type=frame_type,
                reason_phrase="offset + length cannot exceed 2^62 - 1",
            )
        if stream_id & 2:  # unidirectional: ours are send-only
            self._assert_stream_can_receive(frame_type, stream_id)
        stream = self._streams.get(stream_id)
        if stream is None:
            try:
                stream = self._get_or_create_stream(frame_type, stream_id)
            except StreamFinishedError:
                return True  # no state for the stream any more: ignored (still ACK-eliciting)
        if offset + length > stream.max_stream_data_local:
            raise QuicConnectionError(
                error_code=QuicErrorCode.FLOW_CONTROL_ERROR,
                frame_type=frame_type,
                reason_phrase="Over stream data limit",
            )
        receiver = stream.receiver
        newly = offset + length - receiver.highest_offset
        max_data = self._local_max_data
        if newly > 0 and max_data.used + newly > max_data.value:
            raise QuicConnectionError(
                error_code=QuicErrorCode.FLOW_CONTROL_ERROR,
                frame_type=frame_type,
                reason_phrase="Over connection data limit",
            )
        try:
            event = receiver.handle_frame(
                QuicStreamFrame(data=plain[start:end], offset=offset, fin=bool(frame_type & 1))
            )
        except FinalSizeError as exc:
            raise QuicConnectionError(
                error_code=QuicErrorCode.FINAL_SIZE_ERROR,
                frame_type=frame_type,
                reason_phrase=str(exc),
            ) from None
        if event is not None:
            self._events.append(event)
        if newly > 0:
            max_data.used += newly
        return True


def _delivered(sender: Any, delivery: QuicDeliveryState, start: int, stop: int, fin: bool) -> None:
    """Delivery handler of a lean STREAM frame (bound to its sender once per stream):
    ``sender.on_data_delivery(delivery, start, stop, fin)``, with the common case (the oldest
    unacknowledged bytes acknowledged, no other range pending) done in place."""
    if (
        delivery is _ACKED
        and not fin
        and start == sender._buffer_start
        and stop > start
        and sender._reset_error_code is None
        and not len(sender._acked)
    ):
        sender._buffer_start = stop
        buffer = sender._buffer
        if type(buffer) is SendBuffer:
            buffer.drop(stop - start)
        else:
            del buffer[: stop - start]
        if stop == sender._buffer_fin and sender._acked_fin:
            sender.is_finished = True
        return
    sender.on_data_delivery(delivery, start, stop, fin)


def _chunked(stream: Any) -> Any:
    """Give a new stream's sender a :class:`SendBuffer` instead of its bytearray."""
    sender = stream.sender
    buffer = sender._buffer
    if type(buffer) is bytearray and not buffer and sender._buffer_stop == sender._buffer_start:
        sender._buffer = SendBuffer()
    return stream


class SendBuffer:
    """The unacknowledged bytes of one stream, as the chunks they were written in.

    Stands in for the ``bytearray`` aioquic's ``QuicStreamSender`` keeps (it appends with
    ``+=``, reads ``buffer[a:b]`` and drops acknowledged bytes with ``del buffer[:n]``).  A
    bytearray that is appended to at one end while acknowledgements remove bytes at the other
    is copied whole each time it outgrows its allocation: with a 10 MiB send buffer that is
    ~8 bytes copied per byte sent.  Here ``bytes`` written are kept by reference (other buffers
    are copied once) and dropped when acknowledged; a slice copies only its own bytes.
    """

    __slots__ = ("_chunks", "_end", "_ends", "_head", "_start")

    def __init__(self) -> None:
        self._chunks: list[bytes] = []
        #: Running end offset of each chunk (offsets count from the first byte ever written).
        self._ends: list[int] = []
        self._head = 0  # index of the first chunk still held
        self._start = 0  # offset of the buffer's first byte
        self._end = 0  # offset after its last byte

    def __len__(self) -> int:
        return self._end - self._start

    def __bool__(self) -> bool:
        return self._end > self._start

    def __iadd__(self, data: Any) -> SendBuffer:
        if len(data):
            chunk = data if type(data) is bytes else bytes(data)
            self._end += len(chunk)
            self._chunks.append(chunk)
            self._ends.append(self._end)
        return self

    def __getitem__(self, key: slice) -> bytes:
        start, stop, step = key.indices(len(self))
        if step != 1:
            raise ValueError("SendBuffer slices have step 1")
        return self.take(start, stop)

    def take(self, start: int, stop: int) -> bytes:
        """``bytes(buffer[start:stop])`` for ``0 <= start <= stop <= len(buffer)``."""
        if stop <= start:
            return b""
        start += self._start
        stop += self._start
        ends = self._ends
        i = bisect_right(ends, start, self._head)
        chunk = self._chunks[i]
        base = ends[i] - len(chunk)
        if stop <= ends[i]:
            return chunk[start - base : stop - base]
        parts = [chunk[start - base :]]
        while True:
            i += 1
            chunk = self._chunks[i]
            if stop <= ends[i]:
                parts.append(chunk[: stop - (ends[i] - len(chunk))])
                return b"".join(parts)
            parts.append(chunk)

    def __delitem__(self, key: slice) -> None:
        start, stop, step = key.indices(len(self))
        if start != 0 or step != 1:
            raise ValueError("SendBuffer only drops a prefix")
        self.drop(stop)

    def drop(self, count: int) -> None:
        """``del buffer[:count]`` for ``0 <= count <= len(buffer)``."""
        self._start += count
        ends = self._ends
        head = self._head
        while head < len(ends) and ends[head] <= self._start:
            self._chunks[head] = b""
            head += 1
        if head > 64 and head * 2 > len(ends):
            del self._chunks[:head]
            del ends[:head]
            head = 0
        self._head = head
