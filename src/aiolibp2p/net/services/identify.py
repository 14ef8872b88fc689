"""Driver for identify and identify push (codec: :mod:`aiolibp2p.proto.identify`).

On every new connection each side asks the other (``/ipfs/id/1.0.0``); the answer fills the
peerstore (protocols, listen addresses, agent version, key, signed record) and resolves the
connection's identify future.  When our protocols or addresses change, we push the new state
(``/ipfs/id/push/1.0.0``) to every connected peer.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from aiolibp2p.core.errors import Libp2pError
from aiolibp2p.core.record import PeerRecord
from aiolibp2p.log import host_logger as log
from aiolibp2p.net._compat import timeout
from aiolibp2p.net.peerstore import ADDR_TTL_CONNECTED
from aiolibp2p.proto.identify import (
    MAX_INCOMING_SIZE,
    MAX_MESSAGES,
    PROTOCOL_ID,
    PUSH_PROTOCOL_ID,
    IdentifyInfo,
    IdentifyReader,
    KnownRecord,
    PreparedIdentify,
)

if TYPE_CHECKING:
    from aiolibp2p.core.peer import PeerId
    from aiolibp2p.core.record import Envelope
    from aiolibp2p.net.connection import Connection
    from aiolibp2p.net.host import Host
    from aiolibp2p.net.stream import Stream

__all__ = ["IdentifyService", "PROTOCOL_ID", "PUSH_PROTOCOL_ID"]

_FUTURE_KEY = "identify.future"


async def read_identify(
    stream: Stream,
    *,
    expected_peer: PeerId,
    push: bool,
    known_record: KnownRecord | None = None,
) -> IdentifyInfo:
    """Read identify message(s) until the remote closes (go may split one answer in two)."""
    reader = IdentifyReader(max_size=MAX_INCOMING_SIZE, max_messages=MAX_MESSAGES)
    while True:
        chunk = await stream.read(MAX_INCOMING_SIZE)
        if not chunk:
            # Other tasks woken by the same incoming bytes (the application's streams) run
            # before this connection-setup work.
            await asyncio.sleep(0)
            return reader.finish(expected_peer=expected_peer, push=push, known_record=known_record)
        reader.receive_data(chunk)


class IdentifyService:
    """Serves identify, runs it on new connections, and pushes changes."""

    def __init__(self, host: Host) -> None:
        self._host = host
        self._envelope: Envelope | None = None
        self._envelope_addrs: tuple[bytes, ...] = ()
        self._prepared: PreparedIdentify | None = None
        self._prepared_key: tuple[object, ...] = ()

    # ---------------------------------------------------------------------------- our state

    def signed_envelope(self) -> Envelope:
        """Our signed peer record, resealed when our addresses change (seq = time in ns)."""
        host = self._host
        addrs = tuple(host.listen_addrs)
        key = tuple(a.to_bytes() for a in addrs)
        if self._envelope is None or key != self._envelope_addrs:
            record = PeerRecord(peer_id=host.peer_id, seq=time.time_ns(), addrs=addrs)
            self._envelope = record.seal(host.config.identity)
            self._envelope_addrs = key
        return self._envelope

    def _message(self, conn: Connection) -> bytes:
        """Our identify message for ``conn``: encoded once per state, plus its observed addr."""
        host = self._host
        listen_addrs = tuple(host.listen_addrs)
        protocols = tuple(host.protocols())
        envelope = self.signed_envelope()
        key = (listen_addrs, protocols, envelope)
        prepared = self._prepared
        if prepared is None or key != self._prepared_key:
            prepared = self._prepared = PreparedIdentify(
                private_key=host.config.identity,
                listen_addrs=listen_addrs,
                protocols=protocols,
                protocol_version=host.config.protocol_version,
                agent_version=host.config.agent_version,
                signed_envelope=envelope,
            )
            self._prepared_key = key
        return prepared.encode(conn.remote_addr)

    # ------------------------------------------------------------------------------- serving

    async def handle_identify(self, stream: Stream) -> None:
        await stream.write(self._message(stream.connection))
        await stream.close()

    async def handle_push(self, stream: Stream) -> None:
        conn = stream.connection
        try:
            info = await read_identify(
                stream,
                expected_peer=conn.remote_peer,
                push=True,
                known_record=self._known_record(conn.remote_peer),
            )
        except Libp2pError as exc:
            log.info("bad identify push from %s: %s", conn.remote_peer, exc)
            await stream.reset()
            return
        self._store(conn, info)

    # ---------------------------------------------------------------------------- requesting

    def future(self, conn: Connection) -> asyncio.Future[IdentifyInfo]:
        fut = conn.data.get(_FUTURE_KEY)
        if fut is None:
            fut = conn.data[_FUTURE_KEY] = asyncio.get_running_loop().create_future()
        assert isinstance(fut, asyncio.Future)
        return fut

    async def identify_connection(self, conn: Connection) -> None:
        """Ask the remote who it is (run once per new connection); never raises."""
        fut = self.future(conn)
        try:
            async with timeout(self._host.config.identify_timeout):
                stream = await conn.new_stream([PROTOCOL_ID])
                try:
                    await stream.close()
                    info = await read_identify(
                        stream,
                        expected_peer=conn.remote_peer,
                        push=False,
                        known_record=self._known_record(conn.remote_peer),
                    )
                except BaseException:
                    await stream.reset()
                    raise
        except (Libp2pError, asyncio.TimeoutError, OSError) as exc:
            if not fut.done():
                fut.set_exception(exc)
                fut.exception()
            log.info("identify with %s failed: %s", conn.remote_peer, exc)
            return
        self._store(conn, info)
        if not fut.done():
            fut.set_result(info)

    def _known_record(self, peer: PeerId) -> KnownRecord | None:
        """The signed record ``peer`` sent before, as the bytes it came in (not re-verified if
        it sends the same bytes again)."""
        data = self._host.peerstore.get(peer)
        if data is None or data.envelope_bytes is None:
            return None
        assert data.envelope is not None and data.record is not None
        return data.envelope_bytes, data.envelope, data.record

    def _store(self, conn: Connection, info: IdentifyInfo) -> None:
        host = self._host
        peer = conn.remote_peer
        store = host.peerstore
        if info.public_key is not None:
            store.add_public_key(peer, info.public_key)
        if info.protocols or not info.push:  # in a push, an empty list means "no change"
            store.set_protocols(peer, info.protocols)
        if info.agent_version is not None:
            store.put(peer, "AgentVersion", info.agent_version)
        if info.protocol_version is not None:
            store.put(peer, "ProtocolVersion", info.protocol_version)
        if info.signed_envelope is not None and info.signed_record is not None:
            store.consume_peer_record(
                info.signed_envelope,
                info.signed_record,
                ADDR_TTL_CONNECTED,
                raw=info.signed_envelope_bytes,
            )
        elif info.effective_addrs:
            store.add_addrs(peer, info.effective_addrs, ADDR_TTL_CONNECTED)
        if info.observed_addr is not None:
            conn.data["identify.observed_addr"] = info.observed_addr
        host._identified(conn, info)

    # ---------------------------------------------------------------------------------- push

    async def push_all(self) -> None:
        """Send our current state to every connected peer that speaks identify push."""
        host = self._host
        conns = [c for c in host.swarm.connections() if c.is_open]
        await asyncio.gather(*(self._push(c) for c in conns), return_exceptions=True)

    async def _push(self, conn: Connection) -> None:
        if PUSH_PROTOCOL_ID not in self._host.peerstore.protocols(conn.remote_peer):
            return
        try:
            stream = await conn.new_stream([PUSH_PROTOCOL_ID])
            await stream.write(self._message(conn))
            await stream.close()
        except Libp2pError as exc:
            log.info("identify push to %s failed: %s", conn.remote_peer, exc)
