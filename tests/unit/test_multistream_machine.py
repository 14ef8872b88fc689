"""multistream-select 1.0 sans-IO machines: Dialer and Listener, paired in memory and alone."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aiolibp2p._accel import multistream as mss_codec
from aiolibp2p._accel import varint
from aiolibp2p.core.errors import (
    Libp2pError,
    LocalProtocolError,
    NegotiationError,
    ProtocolNotSupported,
)
from aiolibp2p.proto.multistream import (
    MAX_LS_PROTOCOLS,
    MAX_LS_RESPONSE_SIZE,
    MAX_MESSAGE_SIZE,
    MAX_PROTOCOL_ID_LENGTH,
    PROTOCOL_ID,
    Dialer,
    Event,
    Listener,
    NegotiationComplete,
    ProtocolRefused,
    ProtocolsListed,
    State,
)

HEADER = b"\x13/multistream/1.0.0\n"
# "na" and "ls" in hex, as given by multiformats/multistream-select README.md.
NA = bytes.fromhex("036e610a")
LS = bytes.fromhex("036c730a")


def buffer_bound(machine: Dialer | Listener) -> int:
    """Most bytes a machine may hold between calls: one incomplete message of its state."""
    limit = MAX_LS_RESPONSE_SIZE if machine.state is State.AWAIT_LISTING else MAX_MESSAGE_SIZE
    return limit + 8  # at most 9 prefix bytes, and the message is incomplete


Splitter = Callable[[bytes], Iterable[bytes]]


def msg(text: str | bytes) -> bytes:
    """A multistream message, framed by the selected codec twin (aiolibp2p._accel)."""
    return bytes(mss_codec.encode_message(text))


def lp(body: bytes) -> bytes:
    """``uvarint(len(body)) + body``: the outer framing of an ls answer."""
    return bytes(varint.encode_lp(body))


def whole(data: bytes) -> Iterator[bytes]:
    yield data


def bytewise(data: bytes) -> Iterator[bytes]:
    for i in range(len(data)):
        yield data[i : i + 1]


def random_splitter(rng: random.Random) -> Splitter:
    def split(data: bytes) -> Iterator[bytes]:
        pos = 0
        while pos < len(data):
            step = rng.randint(1, max(1, len(data) - pos))
            yield data[pos : pos + step]
            pos += step

    return split


SPLITTERS: dict[str, Splitter] = {"whole": whole, "bytewise": bytewise}


def supports(*protocols: str) -> Callable[[str], bool]:
    return set(protocols).__contains__


# -- in-memory pairing -----------------------------------------------------------------------


@dataclass
class Side:
    machine: Dialer | Listener
    app_out: bytes = b""  # what this side's application writes once it may
    events: list[Event] = field(default_factory=list)
    app_in: bytearray = field(default_factory=bytearray)  # what its application received
    error: Libp2pError | None = None
    app_sent: bool = False

    def outgoing(self) -> bytes:
        data = self.machine.data_to_send()
        may_write = self.machine.selected_protocol is not None and self.error is None
        if may_write and not self.app_sent:
            self.app_sent = True
            data += self.app_out
        return data

    def deliver(self, data: bytes, split: Splitter) -> None:
        for chunk in split(data):
            if self.error is not None:
                return
            if self.machine.done:
                self.app_in += chunk
                continue
            try:
                events = self.machine.receive_data(chunk)
            except Libp2pError as exc:
                assert self.machine.state is State.ERROR
                self.error = exc
                return
            assert self.machine.bytes_buffered <= buffer_bound(self.machine)
            self.events.extend(events)
            for event in events:
                if isinstance(event, NegotiationComplete):
                    self.app_in += event.leftover


def pump(dialer: Side, listener: Side, split: Splitter) -> None:
    """Move bytes both ways until nothing moves (bounded)."""
    for _ in range(500):
        to_listener = dialer.outgoing()
        to_dialer = listener.outgoing()
        if not to_listener and not to_dialer:
            return
        listener.deliver(to_listener, split)
        dialer.deliver(to_dialer, split)
    raise AssertionError("negotiation did not settle")


def completions(side: Side) -> list[NegotiationComplete]:
    return [e for e in side.events if isinstance(e, NegotiationComplete)]


def refusals(side: Side) -> list[str]:
    return [e.protocol for e in side.events if isinstance(e, ProtocolRefused)]


# -- exact wire format -----------------------------------------------------------------------


def test_wire_bytes_of_the_readme_exchange() -> None:
    # The exchange of multiformats/multistream-select README.md ("open connection + send
    # multicodec headers, inc for a protocol not available", then "send a selection of a valid
    # protocol"), with its protocol ids and today's header /multistream/1.0.0.  Length prefixes
    # written by hand: 0x13 = 18 + 1, 0x59 = 88 + 1, 0x44 = 67 + 1; "na" is 0x036e610a (README).
    missing = (
        "/ipfs/QmVXZiejj3sXEmxuQxF2RjmFbEiE9w7T82xDn3uYNuhbFb/some-protocol-that-is-not-available"
    )
    dht = "/ipfs/QmVXZiejj3sXEmxuQxF2RjmFbEiE9w7T82xDn3uYNuhbFb/ipfs-dht/0.2.3"
    proposal_1 = b"\x59" + missing.encode() + b"\n"
    proposal_2 = b"\x44" + dht.encode() + b"\n"
    na = bytes.fromhex("036e610a")

    dialer = Dialer([missing, dht])
    listener = Listener(supports(dht))

    first = dialer.data_to_send()
    assert first == b"\x13/multistream/1.0.0\n" + proposal_1  # header + proposal, one chunk
    assert listener.receive_data(first) == [ProtocolRefused(missing)]
    answer = listener.data_to_send()
    assert answer == b"\x13/multistream/1.0.0\n" + na  # header + answer, one chunk

    assert dialer.receive_data(answer) == [ProtocolRefused(missing)]
    second = dialer.data_to_send()
    assert second == proposal_2

    traffic = b"<dht-traffic>"
    assert listener.receive_data(second + traffic) == [NegotiationComplete(dht, traffic)]
    echo = listener.data_to_send()
    assert echo == proposal_2
    assert dialer.receive_data(echo + b"<reply>") == [NegotiationComplete(dht, b"<reply>")]
    assert dialer.state is listener.state is State.DONE
    assert dialer.data_to_send() == listener.data_to_send() == b""


def test_ls_wire_bytes() -> None:
    # "ls" is 0x036c730a (multiformats/multistream-select README.md, "Listing").  The answer is
    # one message whose body is msg(p) for each protocol followed by "\n" (go-multistream,
    # rust-libp2p); bytes written by hand: 0x0d = 12 + 1, 0x07 = 6 + 1, 0x17 = 14 + 8 + 1.
    assert msg("ls") == LS
    listener = Listener(supports(), listing=lambda: ["/yamux/1.0.0", "/noise"])
    assert listener.receive_data(HEADER + LS) == []
    listing = b"\x17" + b"\x0d/yamux/1.0.0\n" + b"\x07/noise\n" + b"\n"
    assert listener.data_to_send() == HEADER + listing
    assert listener.state is State.AWAIT_PROPOSAL

    dialer = Dialer([], list_protocols=True)
    assert dialer.data_to_send() == HEADER + LS
    events = dialer.receive_data(HEADER + listing)
    assert events == [ProtocolsListed(("/yamux/1.0.0", "/noise"))]
    assert dialer.state is State.LISTED and dialer.done
    assert dialer.selected_protocol is None


def test_constants_match_the_codec() -> None:
    assert PROTOCOL_ID == "/multistream/1.0.0"
    assert msg(PROTOCOL_ID) == HEADER
    assert msg("na") == NA
    assert MAX_MESSAGE_SIZE == mss_codec.MAX_MESSAGE_SIZE
    assert MAX_PROTOCOL_ID_LENGTH == MAX_MESSAGE_SIZE - 1


# -- paired negotiations ---------------------------------------------------------------------


@pytest.mark.parametrize("split", sorted(SPLITTERS))
def test_success_on_first_proposal(split: str) -> None:
    dialer = Side(Dialer(["/yamux/1.0.0", "/mplex/6.7.0"]), app_out=b"dialer-app")
    listener = Side(Listener(supports("/yamux/1.0.0")), app_out=b"listener-app")
    assert dialer.machine.selected_protocol is None
    pump(dialer, listener, SPLITTERS[split])
    assert dialer.error is None and listener.error is None
    assert [c.protocol for c in completions(dialer)] == ["/yamux/1.0.0"]
    assert [c.protocol for c in completions(listener)] == ["/yamux/1.0.0"]
    assert refusals(dialer) == refusals(listener) == []
    assert bytes(dialer.app_in) == b"listener-app"
    assert bytes(listener.app_in) == b"dialer-app"
    assert dialer.machine.selected_protocol == listener.machine.selected_protocol == "/yamux/1.0.0"


@pytest.mark.parametrize("split", sorted(SPLITTERS))
def test_success_on_third_proposal(split: str) -> None:
    protocols = ["/a/1", "/b/1", "/c/1", "/d/1"]
    dialer = Side(Dialer(protocols), app_out=b"\x00\x01\x02")
    listener = Side(Listener(supports("/c/1", "/d/1")), app_out=b"\n\n")
    pump(dialer, listener, SPLITTERS[split])
    assert dialer.error is None and listener.error is None
    assert refusals(dialer) == refusals(listener) == ["/a/1", "/b/1"]
    assert [c.protocol for c in completions(dialer)] == ["/c/1"]
    assert [c.protocol for c in completions(listener)] == ["/c/1"]
    assert bytes(dialer.app_in) == b"\n\n"
    assert bytes(listener.app_in) == b"\x00\x01\x02"
    assert listener.machine.rounds == 2


@pytest.mark.parametrize("split", sorted(SPLITTERS))
def test_all_refused(split: str) -> None:
    protocols = ["/a/1", "/b/1", "/c/1"]
    dialer = Side(Dialer(protocols), app_out=b"never")
    listener = Side(Listener(supports("/z/1")))
    pump(dialer, listener, SPLITTERS[split])
    assert isinstance(dialer.error, ProtocolNotSupported)
    assert dialer.error.protocols == tuple(protocols)
    assert dialer.machine.state is State.ERROR
    assert refusals(listener) == protocols
    assert listener.error is None and listener.machine.state is State.AWAIT_PROPOSAL
    assert listener.app_in == b""  # the dialer never wrote application data


@pytest.mark.parametrize("split", sorted(SPLITTERS))
def test_lazy_success_with_pipelined_data_both_ways(split: str) -> None:
    d = Dialer(["/noise"], lazy=True)
    # Selected before a single byte came back: the driver writes right behind the proposal.
    assert d.selected_protocol == "/noise" and d.state is State.AWAIT_HEADER and not d.done
    dialer = Side(d, app_out=b"noise-msg-1" + HEADER + NA)  # app bytes that look like mss
    listener = Side(Listener(supports("/noise")), app_out=b"noise-msg-2")
    first = dialer.outgoing()
    assert first == HEADER + msg("/noise") + b"noise-msg-1" + HEADER + NA
    listener.deliver(first, SPLITTERS[split])
    assert [c.protocol for c in completions(listener)] == ["/noise"]
    assert bytes(listener.app_in) == b"noise-msg-1" + HEADER + NA
    dialer.deliver(listener.outgoing(), SPLITTERS[split])
    assert dialer.error is None
    assert [c.protocol for c in completions(dialer)] == ["/noise"]
    if split == "whole":
        assert completions(dialer)[0].leftover == b"noise-msg-2"
    assert bytes(dialer.app_in) == b"noise-msg-2"
    assert d.state is State.DONE


@pytest.mark.parametrize("split", sorted(SPLITTERS))
def test_lazy_refused_after_data_was_sent(split: str) -> None:
    dialer = Side(Dialer(["/tls/1.0.0"], lazy=True), app_out=b"\x16\x03\x01client-hello")
    listener = Side(Listener(supports("/noise")))
    pump(dialer, listener, SPLITTERS[split])
    assert dialer.app_sent  # application data went out before the answer
    assert isinstance(dialer.error, ProtocolNotSupported)
    assert dialer.error.protocols == ("/tls/1.0.0",)
    assert dialer.machine.state is State.ERROR
    # The listener read the pipelined bytes as a next proposal: a typed error or still waiting.
    assert listener.error is None or isinstance(listener.error, NegotiationError)
    assert refusals(listener) == ["/tls/1.0.0"]


def test_lazy_refused_with_garbage_after_na() -> None:
    dialer = Dialer(["/x"], lazy=True)
    with pytest.raises(ProtocolNotSupported):
        dialer.receive_data(HEADER + NA + b"\xff\xff\xff garbage")
    with pytest.raises(LocalProtocolError):
        dialer.receive_data(b"more")


@pytest.mark.parametrize("split", sorted(SPLITTERS))
def test_ls_pipelined_with_proposals(split: str) -> None:
    registered = {"/ipfs/id/1.0.0", "/ipfs/ping/1.0.0"}
    protocols = ["/nope", "/ipfs/ping/1.0.0"]
    # Header, ls request and first proposal go out in one chunk.
    assert Dialer(protocols, list_protocols=True).data_to_send() == HEADER + LS + msg("/nope")
    dialer = Side(Dialer(protocols, list_protocols=True), app_out=b"ping")
    listener = Side(
        Listener(registered.__contains__, listing=lambda: sorted(registered)), app_out=b"pong"
    )
    pump(dialer, listener, SPLITTERS[split])
    listed = [e for e in dialer.events if isinstance(e, ProtocolsListed)]
    assert listed == [ProtocolsListed(("/ipfs/id/1.0.0", "/ipfs/ping/1.0.0"))]
    assert dialer.events.index(listed[0]) < dialer.events.index(ProtocolRefused("/nope"))
    assert [c.protocol for c in completions(dialer)] == ["/ipfs/ping/1.0.0"]
    assert bytes(dialer.app_in) == b"pong" and bytes(listener.app_in) == b"ping"
    assert listener.machine.rounds == 2  # one ls, one na


def test_ls_without_listing_and_refused_ls() -> None:
    listener = Listener(supports("/a"))
    listener.receive_data(HEADER + LS)
    assert listener.data_to_send() == HEADER + b"\x01\n"  # an empty list: body is just "\n"
    dialer = Dialer([], list_protocols=True)
    assert dialer.receive_data(HEADER + b"\x01\n") == [ProtocolsListed(())]
    # A listener that answers ls with na: reported as an empty list, proposals go on.
    dialer = Dialer(["/a"], list_protocols=True)
    assert dialer.receive_data(HEADER + NA) == [ProtocolsListed(())]
    assert dialer.state is State.AWAIT_ANSWER
    assert dialer.receive_data(msg("/a")) == [NegotiationComplete("/a", b"")]


def test_listener_consults_supported_at_proposal_time() -> None:
    handlers: set[str] = set()
    listener = Listener(handlers.__contains__)
    assert listener.receive_data(HEADER + msg("/late")) == [ProtocolRefused("/late")]
    handlers.add("/late")  # registered while the stream negotiates
    assert listener.receive_data(msg("/late")) == [NegotiationComplete("/late", b"")]
    assert listener.data_to_send() == HEADER + NA + msg("/late")


# -- leftover bytes --------------------------------------------------------------------------


TRICKY_TAILS = [
    b"",
    b"\x00",
    HEADER + NA + LS,
    b"\xff" * 20,
    b"\n\n\n",
    bytes(range(256)),
]


@pytest.mark.parametrize("tail", TRICKY_TAILS)
@pytest.mark.parametrize("split", sorted(SPLITTERS))
def test_leftover_preserved_exactly(tail: bytes, split: str) -> None:
    listener = Listener(supports("/p"))
    events: list[Event] = []
    received = bytearray()
    for chunk in SPLITTERS[split](HEADER + msg("/p") + tail):
        if listener.done:
            received += chunk
        else:
            events += listener.receive_data(chunk)
    (done,) = [e for e in events if isinstance(e, NegotiationComplete)]
    assert bytes(done.leftover + received) == tail

    dialer = Dialer(["/p"])
    events = []
    received = bytearray()
    for chunk in SPLITTERS[split](HEADER + msg("/p") + tail):
        if dialer.done:
            received += chunk
        else:
            events += dialer.receive_data(chunk)
    (done,) = [e for e in events if isinstance(e, NegotiationComplete)]
    assert bytes(done.leftover + received) == tail


def test_leftover_from_memoryview_and_bytearray_input() -> None:
    data = HEADER + msg("/p") + b"app"
    for wrapped in (bytearray(data), memoryview(data)):
        (done,) = Listener(supports("/p")).receive_data(wrapped)
        assert done == NegotiationComplete("/p", b"app")
        assert type(done.leftover) is bytes


# -- remote violations -----------------------------------------------------------------------


def expect_negotiation_error(machine: Dialer | Listener, data: bytes, match: str) -> None:
    with pytest.raises(NegotiationError, match=match):
        machine.receive_data(data)
    assert machine.state is State.ERROR
    with pytest.raises(LocalProtocolError):
        machine.receive_data(b"")
    with pytest.raises(LocalProtocolError):
        machine.receive_eof()


@pytest.mark.parametrize(
    "header", [msg("/multistream/2.0.0"), msg("/multistream/1.0.0 "), msg("/a"), NA, LS]
)
def test_header_mismatch(header: bytes) -> None:
    expect_negotiation_error(Dialer(["/a"]), header, "expected the header")
    expect_negotiation_error(Listener(supports("/a")), header + msg("/a"), "expected the header")


def test_dialer_rejects_echo_of_another_protocol() -> None:
    dialer = Dialer(["/a", "/b"])
    expect_negotiation_error(dialer, HEADER + msg("/b"), "neither 'na' nor the echo")


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (HEADER + HEADER, "unexpected message"),  # a second header
        (HEADER + LS, "neither 'na' nor the echo"),  # the listener does not ask us
        (b"\x14/multistream/1.0.0\nX", "newline"),  # message not ending in newline
        (b"\x00", "empty"),  # zero-length message
        (b"\x80\x00", "length prefix"),  # non-minimal varint
        (b"\xff" * 10, "length prefix"),  # varint too long
    ],
)
def test_dialer_violations(data: bytes, match: str) -> None:
    expect_negotiation_error(Dialer(["/a"]), data, match)


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (HEADER + NA, "unexpected message"),  # the dialer must not answer
        (HEADER + HEADER, "unexpected message"),
        (HEADER + b"\x03\xff\xfe\n", "UTF-8"),
        (HEADER + b"\x01\n", "empty protocol id"),
        (HEADER + b"\x04a\nb\n", "newline"),
        (HEADER + b"\x03abc", "newline"),
    ],
)
def test_listener_violations(data: bytes, match: str) -> None:
    expect_negotiation_error(Listener(supports("/a")), data, match)


def test_receive_eof_during_negotiation() -> None:
    dialer = Dialer(["/a"], lazy=True)
    dialer.receive_data(HEADER)
    with pytest.raises(NegotiationError, match="ended during negotiation"):
        dialer.receive_eof()
    assert dialer.state is State.ERROR
    listener = Listener(supports("/a"))
    with pytest.raises(NegotiationError):
        listener.receive_eof()


def test_input_after_completion_is_refused() -> None:
    listener = Listener(supports("/a"))
    listener.receive_data(HEADER + msg("/a"))
    assert listener.done
    with pytest.raises(LocalProtocolError, match="belong to the application"):
        listener.receive_data(b"x")
    with pytest.raises(LocalProtocolError):
        listener.receive_eof()
    assert listener.state is State.DONE  # misuse does not break a finished machine


def test_ls_only_dialer_rejects_bytes_after_listing() -> None:
    dialer = Dialer([], list_protocols=True)
    with pytest.raises(NegotiationError, match="after its ls answer"):
        dialer.receive_data(HEADER + b"\x01\n" + b"x")


# -- size limits -----------------------------------------------------------------------------


def test_oversized_protocol_id_refused_when_sending() -> None:
    longest = "/" + "a" * (MAX_PROTOCOL_ID_LENGTH - 1)
    assert len(Dialer([longest]).data_to_send()) == len(HEADER) + 2 + MAX_PROTOCOL_ID_LENGTH + 1
    with pytest.raises(LocalProtocolError, match="exceeds the limit"):
        Dialer([longest + "a"])
    with pytest.raises(LocalProtocolError, match="exceeds the limit"):
        Dialer(["/" + "\u00e9" * 512])  # 1025 UTF-8 bytes, 513 characters
    listener = Listener(supports(), listing=lambda: [longest + "a"])
    with pytest.raises(LocalProtocolError, match="exceeds the limit"):
        listener.receive_data(HEADER + LS)
    assert listener.state is State.ERROR


def test_oversized_ls_answer_refused_when_sending() -> None:
    many = [f"/p/{i}" for i in range(MAX_LS_PROTOCOLS + 1)]
    listener = Listener(supports(), listing=lambda: iter(many))
    with pytest.raises(LocalProtocolError, match="more than 1000"):
        listener.receive_data(HEADER + LS)
    big = ["/" + str(i) * 1000 for i in range(10)] * 7  # 70 entries of ~1 KiB: > 64 KiB
    listener = Listener(supports(), listing=lambda: big)
    with pytest.raises(LocalProtocolError, match="ls answer of"):
        listener.receive_data(HEADER + LS)
    ok = [f"/p/{i}" for i in range(MAX_LS_PROTOCOLS)]
    listener = Listener(supports(), listing=lambda: ok)
    listener.receive_data(HEADER + LS)
    dialer = Dialer([], list_protocols=True)
    assert dialer.receive_data(listener.data_to_send()) == [ProtocolsListed(tuple(ok))]


@pytest.mark.parametrize("role", ["dialer", "listener"])
def test_oversized_message_refused_before_its_body(role: str) -> None:
    machine: Dialer | Listener = Dialer(["/a"]) if role == "dialer" else Listener(supports("/a"))
    machine.receive_data(HEADER)
    prefix = b"\x81\x08"  # uvarint 1025: a 1024-byte protocol id plus its newline
    with pytest.raises(NegotiationError, match="1025 bytes exceeds the limit of 1024"):
        machine.receive_data(prefix)  # raised on the prefix alone: nothing was buffered
    assert machine.bytes_buffered == 0
    at_limit = b"\x80\x08" + b"/" + b"a" * 1022 + b"\n"  # exactly 1024: accepted framing
    fresh = Listener(supports())
    assert fresh.receive_data(HEADER + at_limit) == [ProtocolRefused("/" + "a" * 1022)]


def test_oversized_or_overfull_ls_answer_refused_when_received() -> None:
    dialer = Dialer([], list_protocols=True)
    dialer.receive_data(HEADER)
    too_big = MAX_LS_RESPONSE_SIZE + 1
    with pytest.raises(NegotiationError, match="exceeds the limit"):
        dialer.receive_data(bytes([(too_big & 0x7F) | 0x80, ((too_big >> 7) & 0x7F) | 0x80, 0x04]))
    # 1001 entries that fit in 64 KiB.
    body = b"".join(msg(f"/{i}") for i in range(MAX_LS_PROTOCOLS + 1)) + b"\n"
    dialer = Dialer([], list_protocols=True)
    with pytest.raises(NegotiationError, match="more than the limit"):
        dialer.receive_data(HEADER + lp(body))
    # A truncated entry inside the answer.
    dialer = Dialer([], list_protocols=True)
    with pytest.raises(NegotiationError, match="truncated"):
        dialer.receive_data(HEADER + lp(msg("/a") + b"\x05/b" + b"\n"))


# -- na-round limit --------------------------------------------------------------------------


def test_na_round_limit() -> None:
    listener = Listener(supports("/ok"), max_na_rounds=3)
    assert listener.receive_data(HEADER + msg("/1") + LS + msg("/2")) == [
        ProtocolRefused("/1"),
        ProtocolRefused("/2"),
    ]
    assert listener.rounds == 3
    with pytest.raises(NegotiationError, match="more than 3 proposals"):
        listener.receive_data(msg("/3"))
    assert listener.state is State.ERROR


def test_na_round_limit_allows_success_on_the_last_allowed_round() -> None:
    listener = Listener(supports("/ok"), max_na_rounds=2)
    events = listener.receive_data(HEADER + msg("/1") + msg("/2") + msg("/ok"))
    assert events[-1] == NegotiationComplete("/ok", b"")


def test_default_na_round_limit_against_a_paired_dialer() -> None:
    protocols = [f"/p/{i}" for i in range(100)]
    dialer = Side(Dialer(protocols))
    listener = Side(Listener(supports("/p/99")))
    pump(dialer, listener, whole)
    assert isinstance(listener.error, NegotiationError)
    assert len(refusals(listener)) == 64
    assert dialer.error is None and dialer.machine.state is State.AWAIT_ANSWER


# -- API misuse ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        (("/a",), {}),  # one string, not a sequence of them
        (([],), {}),  # nothing to propose
        ((["/a", "/b"],), {"lazy": True}),  # lazy needs exactly one protocol
        ((["/a"],), {"lazy": True, "list_protocols": True}),
        (([""],), {}),
        ((["/a\n"],), {}),
        ((["/\udcff"],), {}),  # not encodable as UTF-8
        (([b"/a"],), {}),
        ((["na"],), {}),
        ((["ls"],), {}),
        (([PROTOCOL_ID],), {}),
    ],
)
def test_dialer_constructor_misuse(args: tuple[object, ...], kwargs: dict[str, bool]) -> None:
    with pytest.raises(LocalProtocolError):
        Dialer(*args, **kwargs)


def test_listener_constructor_misuse() -> None:
    with pytest.raises(LocalProtocolError):
        Listener({"/a"})
    with pytest.raises(LocalProtocolError):
        Listener(supports(), max_na_rounds=-1)
    with pytest.raises(LocalProtocolError):
        Listener(supports(), listing=["/a"])


def test_proposal_property_tracks_the_pending_proposal() -> None:
    dialer = Dialer(["/a", "/b"])
    assert dialer.proposal == "/a"
    dialer.receive_data(HEADER + NA)
    assert dialer.proposal == "/b"
    dialer.receive_data(msg("/b"))
    assert dialer.proposal is None and dialer.selected_protocol == "/b"


# -- property tests --------------------------------------------------------------------------


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[list[str], set[str], bool, bool, bytes, bytes]:
    names = st.text(
        alphabet=st.characters(blacklist_characters="\n", blacklist_categories=("Cs",)),
        min_size=1,
        max_size=12,
    ).map(lambda s: "/" + s)
    protocols = draw(st.lists(names, min_size=1, max_size=6, unique=True))
    lazy = len(protocols) == 1 and draw(st.booleans())
    list_protocols = not lazy and draw(st.booleans())
    supported = set(draw(st.lists(st.sampled_from([*protocols, "/other"]), max_size=4)))
    return (
        protocols,
        supported,
        lazy,
        list_protocols,
        draw(st.binary(max_size=64)),
        draw(st.binary(max_size=64)),
    )


@given(scenario=scenarios(), rng=st.randoms(use_true_random=False))
def test_paired_negotiation_with_random_splits(
    scenario: tuple[list[str], set[str], bool, bool, bytes, bytes], rng: random.Random
) -> None:
    protocols, supported, lazy, list_protocols, d_app, l_app = scenario
    registered = sorted(supported)
    dialer = Side(Dialer(protocols, lazy=lazy, list_protocols=list_protocols), app_out=d_app)
    listener = Side(Listener(supported.__contains__, listing=lambda: registered), app_out=l_app)
    pump(dialer, listener, random_splitter(rng))
    expected = next((p for p in protocols if p in supported), None)
    refused = protocols if expected is None else protocols[: protocols.index(expected)]
    if list_protocols:
        assert dialer.machine.listed_protocols == tuple(registered)
        if dialer.error is None:  # an error discards the events of the call that raised it
            listed = [e for e in dialer.events if isinstance(e, ProtocolsListed)]
            assert listed == [ProtocolsListed(tuple(registered))]
    if expected is None:
        assert isinstance(dialer.error, ProtocolNotSupported)
        assert dialer.error.protocols == tuple(protocols)
        if lazy:
            # The listener read the pipelined application bytes as more negotiation: it
            # either waits, refuses them, or fails with a typed error.
            assert listener.error is None or isinstance(listener.error, NegotiationError)
        else:
            assert refusals(listener) == protocols
            assert listener.error is None and bytes(listener.app_in) == b""
        return
    assert dialer.error is None and listener.error is None
    assert refusals(dialer) == refusals(listener) == refused
    assert [c.protocol for c in completions(dialer)] == [expected]
    assert [c.protocol for c in completions(listener)] == [expected]
    assert bytes(dialer.app_in) == l_app
    assert bytes(listener.app_in) == d_app


@st.composite
def machines(draw: st.DrawFn) -> Dialer | Listener:
    kind = draw(st.sampled_from(["dialer", "lazy", "ls", "listener"]))
    if kind == "dialer":
        return Dialer(["/a", "/b"])
    if kind == "lazy":
        return Dialer(["/a"], lazy=True)
    if kind == "ls":
        return Dialer(["/a"], list_protocols=True)
    return Listener(supports("/a"), listing=lambda: ["/a", "/b"], max_na_rounds=4)


def feed_arbitrary(machine: Dialer | Listener, chunks: list[bytes]) -> None:
    """Feed chunks; only typed errors, bounded buffers, and an error ends the machine."""
    for chunk in chunks:
        if machine.done:
            return
        try:
            events = machine.receive_data(chunk)
        except Libp2pError:
            assert machine.state is State.ERROR
            assert machine.bytes_buffered == 0
            with pytest.raises(LocalProtocolError):
                machine.receive_data(b"\x00")
            return
        assert machine.bytes_buffered <= buffer_bound(machine)
        assert all(isinstance(event, Event) for event in events)
        machine.data_to_send()


@given(machine=machines(), chunks=st.lists(st.binary(max_size=300), max_size=8))
def test_random_bytes_raise_only_typed_errors(
    machine: Dialer | Listener, chunks: list[bytes]
) -> None:
    feed_arbitrary(machine, chunks)


@given(
    machine=machines(),
    tail=st.lists(
        st.one_of(
            st.binary(max_size=40),
            # framed messages with arbitrary payloads: bad UTF-8, inner newlines, empty ids
            st.binary(max_size=20).map(lambda payload: lp(payload + b"\n")),
            st.lists(st.binary(max_size=8).map(lambda p: lp(p + b"\n"))).map(
                lambda entries: lp(b"".join(entries) + b"\n")
            ),
            st.sampled_from([HEADER, NA, LS, msg("/a"), msg("/b"), b"\x01\n", b"\x81\x08"]),
            st.binary(min_size=1000, max_size=1100),
        ),
        max_size=8,
    ),
    rng=st.randoms(use_true_random=False),
)
def test_header_then_random_messages_raise_only_typed_errors(
    machine: Dialer | Listener, tail: list[bytes], rng: random.Random
) -> None:
    data = HEADER + b"".join(tail)
    feed_arbitrary(machine, list(random_splitter(rng)(data)))


@given(data=st.data(), rng=st.randoms(use_true_random=False))
def test_truncated_valid_streams_wait_then_complete(
    data: st.DataObject, rng: random.Random
) -> None:
    # Every prefix of a valid answer leaves the machine waiting (no error, bounded buffer);
    # the rest of the bytes then completes it with the exact leftover.
    app = data.draw(st.binary(max_size=32))
    role = data.draw(st.sampled_from(["dialer", "listener"]))
    if role == "dialer":
        stream = HEADER + NA + msg("/b") + app
        machine: Dialer | Listener = Dialer(["/a", "/b"])
        last = len(HEADER + NA + msg("/b"))
    else:
        stream = HEADER + LS + msg("/x") + msg("/a") + app
        machine = Listener(supports("/a"), listing=lambda: ["/a"])
        last = len(HEADER + LS + msg("/x") + msg("/a"))
    cut = data.draw(st.integers(min_value=0, max_value=last - 1))
    for chunk in random_splitter(rng)(stream[:cut]):
        assert not any(isinstance(e, NegotiationComplete) for e in machine.receive_data(chunk))
        assert machine.bytes_buffered <= MAX_MESSAGE_SIZE + 9
    assert not machine.done
    events = machine.receive_data(stream[cut:])
    assert events[-1] == NegotiationComplete("/a" if role == "listener" else "/b", app)
