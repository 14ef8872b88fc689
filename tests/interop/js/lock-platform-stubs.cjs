// Add package-lock.json entries for @chainsafe/libp2p-quic's optional per-platform packages that the
// npm registry reachable here does not serve (404: all but linux-x64-gnu), in the shape npm writes
// for optional platform packages (no integrity: they could not be fetched).  Without them `npm ci`
// refuses the lockfile ("Missing: ... from lock file").  Run after every `npm install` here:
//   node lock-platform-stubs.cjs package-lock.json
// Idempotent: existing entries are left alone.
const fs = require('fs')
const file = process.argv[2]
const lock = JSON.parse(fs.readFileSync(file, 'utf8'))
const version = lock.packages['node_modules/@chainsafe/libp2p-quic'].version
const platforms = {
  'darwin-arm64': { cpu: ['arm64'], os: ['darwin'] },
  'darwin-x64': { cpu: ['x64'], os: ['darwin'] },
  'linux-arm64-gnu': { cpu: ['arm64'], libc: ['glibc'], os: ['linux'] },
  'linux-arm64-musl': { cpu: ['arm64'], libc: ['musl'], os: ['linux'] },
  'linux-x64-musl': { cpu: ['x64'], libc: ['musl'], os: ['linux'] },
  'win32-x64-msvc': { cpu: ['x64'], os: ['win32'] }
}
const entries = Object.entries(lock.packages)
for (const [plat, fields] of Object.entries(platforms)) {
  const key = `node_modules/@chainsafe/libp2p-quic-${plat}`
  if (lock.packages[key] != null) continue
  entries.push([key, { version, cpu: fields.cpu, ...(fields.libc ? { libc: fields.libc } : {}), license: 'MIT', optional: true, os: fields.os, engines: { node: '>= 10' } }])
}
entries.sort(([a], [b]) => a === '' ? -1 : b === '' ? 1 : a < b ? -1 : a > b ? 1 : 0)
lock.packages = Object.fromEntries(entries)
fs.writeFileSync(file, JSON.stringify(lock, null, 2) + '\n')
