// A js-libp2p peer for the aiolibp2p interop tests.  Run it with Node 22 (node_modules/.bin/node).
//
//   node peer.mjs [--role listen|dial] [--muxer yamux|mplex|yamux,mplex|mplex,yamux]
//                 [--transport tcp|quic|tcp,quic] [--security noise|tls|noise,tls|tls,noise]
//                 [--listen <multiaddr>[,<multiaddr>...]]
//                 [--target <multiaddr with /p2p/>] [--agent <agent version>]
//   (--muxer, --security: comma-separated preference lists; --transport: the transports the node
//    has; --listen defaults to /ip4/127.0.0.1/tcp/0 and/or /ip4/127.0.0.1/udp/0/quic-v1 to match)
//   (or the env vars PEER_ROLE, PEER_MUXER, PEER_TRANSPORT, PEER_SECURITY, PEER_LISTEN,
//    PEER_TARGET, PEER_AGENT)
// QUIC (@chainsafe/libp2p-quic) brings its own TLS 1.3 and stream multiplexing: --muxer and
// --security only apply to TCP.  /tls/1.0.0 over TCP (@libp2p/tls) offers the muxers in ALPN
// (muxer ids before "libp2p"), so the muxer is chosen inside the TLS handshake.
//
// stdout carries one JSON object per line and nothing else (logs go to stderr):
//   {"event":"listening","peer_id":...,"addrs":[<multiaddrs with /p2p/>],"muxer":...,"impl":"js-libp2p"}
//   {"event":"dialed",...} or {"event":"dial_failed","error":...}      (role dial, after listening)
// stdin takes one JSON command per line; every command may carry an "id" that its result repeats:
//   {"id":1,"cmd":"dial","addr":"/ip4/.../p2p/..."}             -> peer_id, remote_addr, muxer, encryption
//   {"id":2,"cmd":"ping","peer":"<id>"}                          -> rtt_ms (float), library_rtt_ms
//   {"id":3,"cmd":"identify","peer":"<id>"}                      -> what we learned about that peer
//   {"id":4,"cmd":"echo","peer":"<id>","size":N,"seed":"s"}      -> sha256 of sent/received, ms
//   {"id":5,"cmd":"echo_many","peer":"<id>","count":K,"size":N,"seed":"s"}
//   {"id":6,"cmd":"connections"}                                 -> open connections
//   {"id":7,"cmd":"close"}                                       -> stops the node and exits 0
//   {"id":8,"cmd":"perf","peer":"<id>" or "addr":"<multiaddr>","upload_bytes":N,"download_bytes":M}
//        -> upload_bytes, download_bytes (received), early_bytes (received before our write
//           side closed: must be 0), time_seconds (stream open to the server's end of stream)
//   {"id":10,"cmd":"echo_stats"} -> received: [[bytes, sha256 hex], ...], one per stream our echo
//        handler served to a clean end (at most 10,000)
//   {"id":9,"cmd":"perf_stats"}  -> what our /perf/1.0.0 handler saw: completed [{peer,requested,
//           uploaded,sent}], aborted (streams that ended before the reply was complete)
// Results are {"id":..,"ok":true,...} or {"id":..,"ok":false,"error":"..."}.  EOF on stdin = close.
// Payloads are pattern(seed, n): sha256(seed || u64be(i)) for i = 0, 1, ... concatenated, cut to n.
//
// /perf/1.0.0 (libp2p/specs perf/perf.md) is served and spoken by this script itself: npm has no
// @libp2p/perf package.  Client: u64 big-endian request, upload, close our write
// side, read the reply until the server's end of stream.  Server: read the request, drain the
// upload until the client's end of stream, then (never before) send the reply in 64 KiB blocks
// and close.

import { createHash } from 'node:crypto'
import { createInterface } from 'node:readline'
import { parseArgs } from 'node:util'
import { noise } from '@chainsafe/libp2p-noise'
import { quic } from '@chainsafe/libp2p-quic'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { mplex } from '@libp2p/mplex'
import { peerIdFromString } from '@libp2p/peer-id'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { tls } from '@libp2p/tls'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'

const ECHO = '/echo/1.0.0'
const PING = '/ipfs/ping/1.0.0'
const PERF = '/perf/1.0.0'
const PERF_BLOCK = new Uint8Array(64 * 1024) // zeros: the perf payload is arbitrary
// `stream.send()` may keep returning true (no drain needed) for a long time, so a send loop that
// only awaits onDrain() can hold the event loop: then a reset from the remote is never even
// read (the timer variant asks for 2**64 - 1 bytes and resets).  Yield every 16 blocks.
const yieldToLoop = () => new Promise((resolve) => setImmediate(resolve))
const CHUNK = 64 * 1024
const STREAM_LIMIT = 4096

const { values: args } = parseArgs({
  options: {
    role: { type: 'string', default: process.env.PEER_ROLE ?? 'listen' },
    muxer: { type: 'string', default: process.env.PEER_MUXER ?? 'yamux' },
    transport: { type: 'string', default: process.env.PEER_TRANSPORT ?? 'tcp' },
    security: { type: 'string', default: process.env.PEER_SECURITY ?? 'noise' },
    listen: { type: 'string', default: process.env.PEER_LISTEN },
    target: { type: 'string', default: process.env.PEER_TARGET },
    agent: { type: 'string', default: process.env.PEER_AGENT ?? 'js-libp2p-interop-peer' }
  }
})
if (!['listen', 'dial'].includes(args.role)) throw new Error(`bad --role ${args.role}`)
const muxers = args.muxer.split(',')
if (muxers.length === 0 || muxers.some((m) => !['yamux', 'mplex'].includes(m))) throw new Error(`bad --muxer ${args.muxer}`)
if (args.role === 'dial' && args.target == null) throw new Error('--role dial needs --target')
const transports = args.transport.split(',')
if (transports.some((t) => !['tcp', 'quic'].includes(t))) throw new Error(`bad --transport ${args.transport}`)
const securities = args.security.split(',')
if (securities.some((s) => !['noise', 'tls'].includes(s))) throw new Error(`bad --security ${args.security}`)
const DEFAULT_LISTEN = { tcp: '/ip4/127.0.0.1/tcp/0', quic: '/ip4/127.0.0.1/udp/0/quic-v1' }
const listenAddrs = args.listen != null ? args.listen.split(',') : transports.map((t) => DEFAULT_LISTEN[t])

const emit = (obj) => process.stdout.write(JSON.stringify(obj) + '\n')
const log = (...a) => console.error('[js-peer]', ...a)
const hex = (buf) => Buffer.from(buf).toString('hex')

function pattern (seed, n) {
  const out = Buffer.allocUnsafe(Math.ceil(n / 32) * 32)
  const counter = Buffer.alloc(8)
  for (let i = 0, off = 0; off < n; i++, off += 32) {
    counter.writeBigUInt64BE(BigInt(i))
    createHash('sha256').update(seed).update(counter).digest().copy(out, off)
  }
  return out.subarray(0, n)
}

const node = await createLibp2p({
  addresses: { listen: listenAddrs },
  transports: transports.map((t) => t === 'tcp' ? tcp() : quic()),
  connectionEncrypters: securities.map((s) => s === 'noise' ? noise() : tls()),
  // js mplex closes the connection when a peer opens more than `disconnectThreshold` (default 5)
  // streams per second, or sends that many frames for unknown streams: lift it for the tests
  streamMuxers: muxers.map((m) => m === 'yamux' ? yamux() : mplex({ disconnectThreshold: 100_000 })),
  nodeInfo: { userAgent: args.agent },
  connectionManager: {
    // js defaults: 5 inbound connections per second per host, 10 pending inbound, 300 total
    maxConnections: 10_000,
    maxIncomingPendingConnections: 1_000,
    inboundConnectionThreshold: 10_000,
    maxParallelDials: 1_000,
    maxDialQueueLength: 10_000,
    dialTimeout: 30_000
  },
  // the ping command runs the library's ping and then one of its own: the library's stream may
  // still count as open (its close is asynchronous, slower against py-libp2p over QUIC), so
  // allow two outbound ping streams instead of the default one
  services: { identify: identify(), ping: ping({ maxOutboundStreams: 2 }) }
})

// identify results as js delivered them ('peer:identify' fires after a successful exchange)
const identified = new Map()
const identifyWaiters = new Map()
node.addEventListener('peer:identify', (evt) => {
  const id = evt.detail.peerId.toString()
  identified.set(id, evt.detail)
  for (const resolve of identifyWaiters.get(id) ?? []) resolve()
  identifyWaiters.delete(id)
})

// The chunks a stream receives until the remote closes its write side.  Not `for await (... of
// stream)`: in js-libp2p 3.3 that never ends when the remote's FIN arrived before iteration began
// (a dialer that sends protocol proposal + data + FIN at once, before our handler runs).
async function * received (stream) {
  const queue = []
  let wake = () => {}
  let error
  const notify = () => wake()
  const onMessage = (evt) => { queue.push(evt.data.subarray()); notify() }
  const onClose = (evt) => { error = evt.error; notify() }
  const events = [['message', onMessage], ['end', notify], ['remoteCloseWrite', notify], ['close', onClose]]
  for (const [name, fn] of events) stream.addEventListener(name, fn)
  try {
    while (true) {
      if (queue.length > 0) {
        yield queue.shift()
      } else if (error != null) {
        throw error
      } else if (stream.status !== 'open' || ((stream.remoteWriteStatus === 'closed' || stream.readableEnded) && stream.readBufferLength === 0)) {
        return
      } else {
        await new Promise((resolve) => { wake = resolve })
      }
    }
  } finally {
    for (const [name, fn] of events) stream.removeEventListener(name, fn)
  }
}

// echo: send every byte back until the remote closes its write side, then close ours
// what the echo handler received on each stream that ended cleanly ({bytes, sha256}, bounded)
const echoStats = []
const ECHO_STATS_LIMIT = 10_000
await node.handle(ECHO, async (stream) => {
  try {
    const digest = createHash('sha256')
    let n = 0
    for await (const chunk of received(stream)) {
      digest.update(chunk)
      n += chunk.length
      if (!stream.send(chunk)) await stream.onDrain()
    }
    await stream.close()
    if (echoStats.length < ECHO_STATS_LIMIT) echoStats.push([n, digest.digest('hex')])
  } catch (err) {
    log('echo handler failed:', err.message)
    stream.abort(err)
  }
}, { maxInboundStreams: STREAM_LIMIT, maxOutboundStreams: STREAM_LIMIT })

// perf server
const perfStats = { completed: [], aborted: 0 }
await node.handle(PERF, async (stream, connection) => {
  const header = new Uint8Array(8)
  let have = 0
  let uploaded = 0
  let sent = 0n
  try {
    for await (const chunk of received(stream)) {
      const take = Math.min(8 - have, chunk.length)
      if (take > 0) header.set(chunk.subarray(0, take), have)
      have += take
      uploaded += chunk.length - take
    }
    if (have < 8) throw new Error(`perf: stream ended inside the request header (${have} of 8 bytes)`)
    const requested = new DataView(header.buffer).getBigUint64(0, false)
    // the upload has ended (the client closed its write side): only now send the reply
    const block = BigInt(PERF_BLOCK.length)
    for (let i = 1; sent < requested; i++) {
      const n = requested - sent < block ? Number(requested - sent) : PERF_BLOCK.length
      if (!stream.send(PERF_BLOCK.subarray(0, n))) await stream.onDrain()
      sent += BigInt(n)
      if (i % 16 === 0) await yieldToLoop()
    }
    await stream.close()
    perfStats.completed.push({ peer: connection.remotePeer.toString(), requested: Number(requested), uploaded, sent: Number(sent) })
  } catch (err) {
    perfStats.aborted++
    log('perf handler ended early:', err.message)
    stream.abort(err)
  }
}, { maxInboundStreams: STREAM_LIMIT, maxOutboundStreams: STREAM_LIMIT })

// perf client: request, upload, close write, download until the server's end of stream
async function perfOnce (target, up, down, signal) {
  const t0 = performance.now()
  const stream = await node.dialProtocol(target, PERF, { signal, maxOutboundStreams: STREAM_LIMIT })
  let downloaded = 0
  let early = 0
  let writeClosed = false
  const reading = (async () => {
    for await (const chunk of received(stream)) {
      downloaded += chunk.length
      if (!writeClosed) early += chunk.length
    }
  })()
  try {
    const header = new Uint8Array(8)
    new DataView(header.buffer).setBigUint64(0, BigInt(down), false)
    if (!stream.send(header)) await stream.onDrain({ signal })
    for (let left = up, i = 1; left > 0; left -= PERF_BLOCK.length, i++) {
      if (!stream.send(PERF_BLOCK.subarray(0, Math.min(left, PERF_BLOCK.length)))) await stream.onDrain({ signal })
      if (i % 16 === 0) await yieldToLoop()
    }
    writeClosed = true
    await stream.close({ signal })
    await reading
  } catch (err) {
    stream.abort(err)
    await reading.catch(() => {})
    throw err
  }
  return { upload_bytes: up, download_bytes: downloaded, early_bytes: early, time_seconds: (performance.now() - t0) / 1000 }
}

const connInfo = (c) => ({
  peer_id: c.remotePeer.toString(),
  remote_addr: c.remoteAddr.toString(),
  direction: c.direction,
  muxer: c.multiplexer,
  encryption: c.encryption,
  status: c.status
})

async function echoOnce (peer, payload, signal) {
  const t0 = performance.now()
  const stream = await node.dialProtocol(peer, ECHO, { signal, maxOutboundStreams: STREAM_LIMIT })
  const digest = createHash('sha256')
  let bytes = 0
  const reading = (async () => {
    for await (const chunk of received(stream)) {
      digest.update(chunk)
      bytes += chunk.length
    }
  })()
  try {
    for (let off = 0; off < payload.length; off += CHUNK) {
      if (!stream.send(payload.subarray(off, off + CHUNK))) await stream.onDrain({ signal })
    }
    await stream.close({ signal })
    await reading
  } catch (err) {
    stream.abort(err)
    await reading.catch(() => {})
    throw err
  }
  const sent = createHash('sha256').update(payload).digest('hex')
  const got = digest.digest('hex')
  return { bytes: payload.length, received: bytes, sha256_sent: sent, sha256_received: got, match: sent === got, ms: performance.now() - t0 }
}

async function identifyInfo (peer, signal) {
  const id = peer.toString()
  if (!identified.has(id)) {
    // js runs identify on every new connection; wait a little for it, then ask explicitly
    await new Promise((resolve) => {
      const t = setTimeout(resolve, 2000)
      identifyWaiters.set(id, [...(identifyWaiters.get(id) ?? []), () => { clearTimeout(t); resolve() }])
    })
    if (!identified.has(id)) {
      const conn = node.getConnections(peer)[0]
      if (conn == null) throw new Error(`not connected to ${id}`)
      await node.services.identify.identify(conn, { signal })
    }
  }
  const r = identified.get(id)
  const stored = await node.peerStore.get(peer)
  const agent = stored.metadata.get('AgentVersion')
  return {
    peer_id: id,
    protocols: r.protocols,
    listen_addrs: r.listenAddrs.map(String),
    agent_version: r.agentVersion ?? null,
    protocol_version: r.protocolVersion ?? null,
    observed_addr: r.observedAddr?.toString() ?? null,
    public_key: r.publicKey != null ? hex(r.publicKey) : null,
    // js verifies the envelope (signature, domain, peer id) or fails the whole identify exchange
    signed_record: r.signedPeerRecord == null
      ? null
      : { verified: true, seq: r.signedPeerRecord.seq.toString(), addrs: r.signedPeerRecord.addresses.map(String) },
    peerstore: {
      protocols: stored.protocols,
      addrs: stored.addresses.map((a) => ({ addr: a.multiaddr.toString(), certified: a.isCertified })),
      agent_version: agent == null ? null : new TextDecoder().decode(agent),
      has_peer_record_envelope: stored.peerRecordEnvelope != null
    }
  }
}

async function precisePing (peer, signal) {
  // the library's ping reports whole milliseconds (0 on loopback): time one exchange ourselves too
  const stream = await node.dialProtocol(peer, PING, { signal })
  try {
    const data = crypto.getRandomValues(new Uint8Array(32))
    const t0 = performance.now()
    const echoed = []
    let n = 0
    const iter = stream[Symbol.asyncIterator]()
    stream.send(data)
    while (n < 32) {
      const { value, done } = await iter.next()
      if (done) throw new Error('ping stream ended early')
      const b = value.subarray()
      echoed.push(b)
      n += b.length
    }
    const rtt = performance.now() - t0
    if (!Buffer.concat(echoed).subarray(0, 32).equals(Buffer.from(data))) throw new Error('ping payload mismatch')
    await stream.close({ signal })
    return rtt
  } catch (err) {
    stream.abort(err)
    throw err
  }
}

const commands = {
  async dial ({ addr }, signal) {
    const conn = await node.dial(multiaddr(addr), { signal })
    return connInfo(conn)
  },
  async ping ({ peer }, signal) {
    const id = peerIdFromString(peer)
    const libraryRtt = await node.services.ping.ping(id, { signal })
    return { rtt_ms: await precisePing(id, signal), library_rtt_ms: libraryRtt }
  },
  async identify ({ peer }, signal) {
    return identifyInfo(peerIdFromString(peer), signal)
  },
  async echo ({ peer, size, seed = 'echo' }, signal) {
    return echoOnce(peerIdFromString(peer), pattern(seed, size), signal)
  },
  async echo_many ({ peer, count, size, seed = 'many' }, signal) {
    const id = peerIdFromString(peer)
    const t0 = performance.now()
    const results = await Promise.allSettled(
      Array.from({ length: count }, (_, i) => echoOnce(id, pattern(`${seed}:${i}`, size), signal)))
    const failures = results.flatMap((r, i) =>
      r.status === 'rejected' ? [{ stream: i, error: String(r.reason?.message ?? r.reason) }]
        : r.value.match ? [] : [{ stream: i, error: 'sha256 mismatch', received: r.value.received }])
    return {
      count,
      ok_streams: count - failures.length,
      all_match: failures.length === 0,
      failures: failures.slice(0, 10),
      sha256_sent: results.map((r) => r.value?.sha256_sent ?? null),
      ms: performance.now() - t0
    }
  },
  async perf ({ peer, addr, upload_bytes: up, download_bytes: down }, signal) {
    const target = addr != null ? multiaddr(addr) : peerIdFromString(peer)
    return perfOnce(target, up, down, signal)
  },
  async perf_stats () {
    return perfStats
  },
  async echo_stats () {
    return { received: echoStats }
  },
  async connections () {
    return { connections: node.getConnections().map(connInfo) }
  },
  async close () {
    setImmediate(shutdown)
    return {}
  }
}

let stopping = false
async function shutdown () {
  if (stopping) return
  stopping = true
  const hardExit = setTimeout(() => process.exit(3), 5000)
  try { await node.stop() } catch (err) { log('stop failed:', err.message) }
  clearTimeout(hardExit)
  process.exit(0)
}
process.on('SIGTERM', shutdown)
process.on('SIGINT', shutdown)

async function run (line) {
  let msg
  try { msg = JSON.parse(line) } catch { emit({ ok: false, error: `bad json: ${line}` }); return }
  const fn = commands[msg.cmd]
  if (fn == null) { emit({ id: msg.id, ok: false, error: `unknown cmd ${msg.cmd}` }); return }
  try {
    const result = await fn(msg, AbortSignal.timeout(msg.timeout_ms ?? 60_000))
    emit({ id: msg.id, ok: true, ...result })
  } catch (err) {
    log(`${msg.cmd} failed:`, err)
    emit({ id: msg.id, ok: false, error: `${err.name}: ${err.message}` })
  }
}

emit({
  event: 'listening',
  impl: 'js-libp2p',
  peer_id: node.peerId.toString(),
  addrs: node.getMultiaddrs().map(String),
  muxer: args.muxer,
  transport: args.transport,
  security: args.security,
  agent_version: args.agent
})

createInterface({ input: process.stdin }).on('line', (line) => { if (line.trim() !== '') run(line) })
process.stdin.on('end', shutdown)

if (args.role === 'dial') {
  try {
    emit({ event: 'dialed', ...(await commands.dial({ addr: args.target }, AbortSignal.timeout(30_000))) })
  } catch (err) {
    log('dial failed:', err)
    emit({ event: 'dial_failed', error: `${err.name}: ${err.message}` })
  }
}
