#!/usr/bin/env node
// Side by side, in one run: Doorstep's sync against the automerge-repo sync server, with the same workload.
//
//   cd benches/peer && npm ci && node compare.mjs [--devices 20] [--visits 60] [--rounds 1]
//                                                 [--peers sync-server,repo2] [--no-idle-wait]
//
// Needs a Rust toolchain (it builds `doorstep` and the sync bench in release mode), Node.js 20 or later, and the
// `sqlite3` command-line shell (to read the demo grid documents out of a Doorstep data dir).
//
// 1. The grid documents. `doorstep serve --demo` fills a temporary data dir with the demo territory (the same
//    `server::demo::territory_csv()` that `benches/sync.rs` imports) and then some demo visits. The driver reads
//    each grid's stored document (snapshot plus appended changes) with `sqlite3`, and drops the changes written
//    by the demo devices. What is left is exactly the document the bench's devices download: the genesis change
//    and the registry change (grid description and places), with Doorstep's layout (`schema`, `grid`, `places`,
//    `visits`).
// 2. Doorstep: `cargo bench --bench sync -- --devices N --visits M --restart`, run as its executable so that
//    the driver can follow it and its server processes; its printed figures are parsed (the phase table by
//    column name).
// 3. Each peer: the server runs as its own process (nodefs storage in a temporary dir, websocket on a loopback
//    port): `sync-server` is the npm package's own entry point, `repo2` the same server on automerge-repo 2.x
//    (repo2-server.mjs). Devices form the bench's teams (at most 20 devices each, each team with its own copy of
//    the grids). A seeding client imports every team's grid documents and waits until the server has stored
//    them all, then leaves. N devices, each in its own worker thread (device.mjs) with its own Repo, websocket
//    client and in-memory storage, find their team's grids one device at a time (the initial download), go
//    offline, record M visits each with one `handle.change()` per visit (the visits `benches/sync.rs` records:
//    its generator, seed and draws are reproduced below, and the values have the types `GridDoc::add_visit`
//    writes), and reconnect all at once. Measured from the reconnection: until the server's storage files hold
//    all N×M visits (ingest; per device, until they hold its M visits: the latency), and until every device
//    holds all its team's visits (convergence). The run fails if any of that does not happen within --timeout,
//    after reporting what was measured until then.
//
// Both servers are restarted on their data dirs after the setup (so that their memory is that of serving the
// grids on disk, not of having imported them), and their peak RSS is reset (`/proc/PID/clear_refs`) before the
// initial download: the peak reported covers the initial download to convergence.
//
// Each system's measured part starts only after the machine has been at least 90% idle for 3 seconds, and the
// CPU other processes used meanwhile is reported; a run they disturbed is marked and left out of the summary.

import * as A from "@automerge/automerge"
import { Repo } from "@automerge/automerge-repo"
import { WebSocketClientAdapter } from "@automerge/automerge-repo-network-websocket"
import { Worker } from "node:worker_threads"
import { MemoryStorage } from "./device.mjs"
import { execFileSync, spawn } from "node:child_process"
import fs from "node:fs"
import net from "node:net"
import os from "node:os"
import path from "node:path"
import { fileURLToPath } from "node:url"
import { performance } from "node:perf_hooks"

const HERE = path.dirname(fileURLToPath(import.meta.url))
const ROOT = path.resolve(HERE, "../..")
const CLK_TCK = 100 // jiffies per second in /proc/*/stat on Linux
/** A run during which other processes used more than this share of the machine (and more than half a CPU
 * second) is marked as disturbed. */
const DISTURBED = 0.05
const disturbed = r => r.otherShare > DISTURBED && r.otherCpu > 0.5

// ---------------------------------------------------------------------------------------------- arguments

function parseArgs(argv) {
  const args = { devices: 20, visits: 60, rounds: 1, peers: ["sync-server", "repo2"], idleWait: true, idleTimeout: 1800, timeout: 600, verbose: false, doorstep: true, deviceStorage: true, release: true }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    const num = () => {
      const v = Number(argv[++i])
      if (!Number.isInteger(v) || v <= 0) throw new Error(`${a} needs a positive whole number`)
      return v
    }
    if (a === "--devices") args.devices = num()
    else if (a === "--visits") args.visits = num()
    else if (a === "--rounds") args.rounds = num()
    else if (a === "--idle-timeout") args.idleTimeout = num()
    else if (a === "--no-idle-wait") args.idleWait = false
    else if (a === "--timeout") args.timeout = num()
    else if (a === "--verbose") args.verbose = true
    else if (a === "--no-doorstep") args.doorstep = false
    else if (a === "--ephemeral-devices") args.deviceStorage = false
    // The test script's smoke run: the debug build it already has, so that it checks the driver, not the figures.
    else if (a === "--debug-build") args.release = false
    else if (a === "--peers") {
      args.peers = String(argv[++i]).split(",").filter(Boolean)
      for (const p of args.peers) if (!PEERS[p]) throw new Error(`unknown peer ${p}; known: ${Object.keys(PEERS)}`)
    } else if (a === "-h" || a === "--help") {
      console.log(
        "usage: node compare.mjs [--devices N] [--visits M] [--rounds R] [--peers sync-server,repo2] [--no-idle-wait] [--idle-timeout SECONDS] [--timeout SECONDS] [--verbose] [--no-doorstep] [--ephemeral-devices] [--debug-build]",
      )
      process.exit(0)
    } else throw new Error(`unknown argument ${a}`)
  }
  return args
}

const PEERS = {
  "sync-server": {
    label: "automerge-repo-sync-server",
    script: () => path.join(HERE, "node_modules/@automerge/automerge-repo-sync-server/src/index.js"),
    versions: () =>
      `@automerge/automerge-repo-sync-server ${pkgVersion("@automerge/automerge-repo-sync-server")} ` +
      `(automerge-repo ${pkgVersion("@automerge/automerge-repo-sync-server/node_modules/@automerge/automerge-repo")}, ` +
      `automerge ${pkgVersion("@automerge/automerge-repo-sync-server/node_modules/@automerge/automerge", "@automerge/automerge")})`,
  },
  repo2: {
    label: "automerge-repo 2.x server",
    script: () => path.join(HERE, "repo2-server.mjs"),
    versions: () =>
      `repo2-server.mjs (automerge-repo ${pkgVersion("@automerge/automerge-repo")}, automerge ${pkgVersion("@automerge/automerge")})`,
  },
}

function pkgVersion(...names) {
  for (const name of names) {
    const file = path.join(HERE, "node_modules", name, "package.json")
    if (fs.existsSync(file)) return JSON.parse(fs.readFileSync(file, "utf8")).version
  }
  return "?"
}

// ---------------------------------------------------------------------------------------------- processes

function procStatus(pid) {
  try {
    const text = fs.readFileSync(`/proc/${pid}/status`, "utf8")
    const kib = name => Number((text.match(new RegExp(`^${name}:\\s+(\\d+) kB`, "m")) ?? [])[1] ?? NaN)
    return { hwm: kib("VmHWM"), rss: kib("VmRSS") }
  } catch {
    return null
  }
}

/** CPU seconds (user + system) a process has used so far; with `children`, also its children that it reaped. */
function procCpu(pid, children = false) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8")
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ").map(Number)
    return (f[11] + f[12] + (children ? f[13] + f[14] : 0)) / CLK_TCK
  } catch {
    return null
  }
}

/** Busy and total CPU time of the whole machine, in seconds summed over CPUs. */
function machineCpu() {
  const line = fs.readFileSync("/proc/stat", "utf8").split("\n")[0]
  const v = line.trim().split(/\s+/).slice(1).map(Number)
  const idle = v[3] + (v[4] ?? 0)
  const total = v.slice(0, 8).reduce((a, b) => a + b, 0)
  return { busy: (total - idle) / CLK_TCK, total: total / CLK_TCK }
}

const sleep = ms => new Promise(r => setTimeout(r, ms))

/** The processes that used the most CPU over one second, for the log. */
async function busiest() {
  const sample = () => {
    const out = new Map()
    for (const pid of fs.readdirSync("/proc").filter(p => /^\d+$/.test(p))) {
      const cpu = procCpu(pid)
      if (cpu != null) out.set(pid, cpu)
    }
    return out
  }
  const a = sample()
  await sleep(1000)
  const b = sample()
  return [...b]
    .map(([pid, cpu]) => [pid, cpu - (a.get(pid) ?? cpu)])
    .filter(([, d]) => d > 0.05)
    .sort((x, y) => y[1] - x[1])
    .slice(0, 3)
    .map(([pid, d]) => {
      let name = "?"
      try {
        name = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean).slice(0, 2).map(x => path.basename(x)).join(" ")
      } catch {}
      return `${name} (pid ${pid}) ${Math.round(d * 100)}%`
    })
    .join(", ") || "none"
}

/** Waits until the machine has been at least `minIdle` idle for `seconds` consecutive seconds. */
async function waitIdle(args, what) {
  if (!args.idleWait) return
  const started = Date.now()
  let calm = 0
  let prev = machineCpu()
  let warned = false
  while (calm < 3) {
    await sleep(1000)
    const now = machineCpu()
    const idle = 1 - (now.busy - prev.busy) / Math.max(now.total - prev.total, 1e-9)
    prev = now
    calm = idle >= 0.9 ? calm + 1 : 0
    if (!warned && Date.now() - started > 10_000) {
      console.error(`waiting for the machine to be idle before ${what} (now ${(idle * 100).toFixed(0)}% idle; busiest: ${await busiest()})…`)
      warned = true
    }
    if (Date.now() - started > args.idleTimeout * 1000) {
      console.error(`warning: the machine was not idle within ${args.idleTimeout} s; measuring ${what} anyway`)
      return
    }
  }
}

/** Follows a running process and its descendants, every 50 ms: their CPU time (the living ones', plus what the
 * root reaped from those that ended) and the sum of their peak RSS. */
function follow(root) {
  const hwm = new Map()
  const seen = { cpu: 0, hwm: 0 }
  const tree = pid => {
    const kids = []
    try {
      for (const t of fs.readdirSync(`/proc/${pid}/task`)) {
        kids.push(...fs.readFileSync(`/proc/${pid}/task/${t}/children`, "utf8").split(/\s+/).filter(Boolean).map(Number))
      }
    } catch {}
    return [pid, ...kids.flatMap(tree)]
  }
  const timer = setInterval(() => {
    let cpu = 0
    for (const pid of tree(root)) {
      cpu += procCpu(pid, pid === root) ?? 0
      const st = procStatus(pid)
      if (st && st.hwm > (hwm.get(pid) ?? 0)) hwm.set(pid, st.hwm)
    }
    seen.cpu = Math.max(seen.cpu, cpu)
    seen.hwm = [...hwm.values()].reduce((a, b) => a + b, 0)
  }, 50)
  return { seen, stop: () => clearInterval(timer) }
}

function run(cmd, argv, opts = {}) {
  return execFileSync(cmd, argv, { cwd: ROOT, encoding: "utf8", maxBuffer: 256 << 20, ...opts })
}

async function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer()
    s.once("error", reject)
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address()
      s.close(() => resolve(port))
    })
  })
}

/** Resolves with the child's stdout so far once a line matches `pattern`; rejects if it exits first. */
function waitForLine(child, pattern, what, timeoutMs = 120_000) {
  return new Promise((resolve, reject) => {
    let out = ""
    let err = ""
    const timer = setTimeout(() => reject(new Error(`${what} did not start in time:\n${out}${err}`)), timeoutMs)
    child.stdout.on("data", d => {
      out += d
      if (pattern.test(out)) {
        clearTimeout(timer)
        resolve(out)
      }
    })
    child.stderr.on("data", d => (err += d))
    child.once("exit", code => {
      clearTimeout(timer)
      reject(new Error(`${what} exited with ${code}:\n${out}${err}`))
    })
  })
}

function exited(child) {
  return child.exitCode !== null || child.signalCode !== null
    ? Promise.resolve()
    : new Promise(r => child.once("exit", r))
}

// ---------------------------------------------------------------------------------------------- the grids

/** The demo territory's grid documents as Doorstep serves them to a device before any visit. */
async function demoGrids(doorstep) {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "doorstep-demo-"))
  try {
    const data = path.join(tmp, "data")
    const child = spawn(doorstep, ["serve", "--demo", "--data-dir", data, "--listen", "127.0.0.1:0"], {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, DOORSTEP_LOG: "warn" },
    })
    await waitForLine(child, /listening on/i, "doorstep serve --demo")
    child.kill("SIGTERM")
    await exited(child)
    const db = path.join(data, "doorstep.db")
    const query = sql => {
      const out = run("sqlite3", ["-readonly", "-json", db, sql]).trim()
      return out ? JSON.parse(out) : []
    }
    const deviceActors = new Set(query("SELECT actor FROM devices").map(r => r.actor))
    const changes = new Map()
    for (const r of query("SELECT grid_code AS grid, hex(bytes) AS bytes FROM grid_changes ORDER BY grid_code, seq")) {
      if (!changes.has(r.grid)) changes.set(r.grid, [])
      changes.get(r.grid).push(Buffer.from(r.bytes, "hex"))
    }
    const grids = []
    for (const r of query("SELECT grid_code AS grid, hex(snapshot) AS snapshot FROM grid_snapshots ORDER BY grid_code")) {
      let doc = A.load(Buffer.from(r.snapshot, "hex"))
      for (const c of changes.get(r.grid) ?? []) doc = A.loadIncremental(doc, c)
      // Keep the genesis and registry changes; drop the demo devices' visits.
      const keep = A.getAllChanges(doc).filter(c => !deviceActors.has(A.decodeChange(c).actor))
      const [clean] = A.applyChanges(A.init(), keep)
      if (Object.keys(clean.visits).length !== 0) throw new Error(`grid ${r.grid} still holds visits`)
      const places = Object.keys(clean.places)
        .sort(byteOrder)
        .map(id => ({ id, kind: String(clean.places[id].kind) }))
      grids.push({ code: r.grid, bytes: A.save(clean), changes: keep.length, places })
    }
    if (grids.length === 0) throw new Error("the demo data dir holds no grid")
    return grids
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true })
  }
}

const byteOrder = (a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))

// ---------------------------------------------------------------------------------------------- the visits

/** `Rng` of benches/sync.rs (xorshift64*), so that the peer records the same visits. */
class Rng {
  constructor(seed) {
    this.s = BigInt.asUintN(64, seed)
  }
  next() {
    let x = this.s
    x ^= x >> 12n
    x = BigInt.asUintN(64, x ^ (x << 25n))
    x ^= x >> 27n
    this.s = x
    return BigInt.asUintN(64, x * 0x2545f4914f6cdd1dn)
  }
  below(n) {
    return Number(this.next() % BigInt(n))
  }
  chance(percent) {
    return this.next() % 100n < BigInt(percent)
  }
}

/** Devices per team at most, as in benches/sync.rs. */
const TEAM_SIZE = 20

/** The teams of benches/sync.rs: devices in contiguous blocks of at most TEAM_SIZE, each team holding its own copy
 * of the demo town (the first as it is, the others with every code prefixed `T02-`, `T03-`, …). */
function teamsOf(n, grids) {
  const count = Math.ceil(n / TEAM_SIZE)
  const teams = []
  for (let t = 0; t < count; t++) {
    const prefix = t === 0 ? "" : `T${String(t + 1).padStart(2, "0")}-`
    teams.push({
      index: t,
      prefix,
      size: 0,
      grids: grids.map(g => ({ ...g, code: prefix + g.code })),
    })
  }
  const teamOf = i => teams[Math.floor((i * count) / n)]
  for (let i = 0; i < n; i++) teamOf(i).size++
  return { teams, teamOf }
}

const NOTES = ["门锁着，下次再来", "老人在家，已讲解", "店主要求多留两本", "gate locked, dog in the yard"]

/** A UUID v7, as Doorstep's visit ids. */
function uuidV7() {
  const b = crypto.getRandomValues(new Uint8Array(16))
  const ms = BigInt(Date.now())
  for (let i = 0; i < 6; i++) b[i] = Number((ms >> BigInt(8 * (5 - i))) & 0xffn)
  b[6] = 0x70 | (b[6] & 0x0f)
  b[8] = 0x80 | (b[8] & 0x3f)
  const h = Buffer.from(b).toString("hex")
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`
}

/** `record_visits` of benches/sync.rs: the same draws in the same order. `team` holds the device's grids; their
 * place ids carry the team's prefix, as in the bench's copies of the demo town. Returns [gridCode, visitId, fields]. */
function drawVisits(device, team, count, rng) {
  const codes = team.grids.map(g => g.code).sort(byteOrder)
  const byCode = new Map(team.grids.map(g => [g.code, g.places]))
  const now = Date.now()
  const out = []
  for (let i = 0; i < count; i++) {
    const code = codes[rng.below(codes.length)]
    const places = byCode.get(code)
    const place = places[rng.below(places.length)]
    const o = rng.below(20)
    const outcome =
      o <= 2 ? "nobody-home" : o === 3 ? "refused" : o === 4 && place.kind === "household" ? "gone" : "completed"
    const done = outcome === "completed"
    const at = now - rng.below(60 * 24 * 30) * 60_000
    const briefed = done && rng.chance(80)
    const poster = done && rng.chance(70)
    const note = rng.chance(20) ? NOTES[rng.below(NOTES.length)] : null
    let gps = null
    if (rng.chance(50)) {
      const lat = 30.18 + (rng.below(10_000) - 5000) / 100_000
      const lon = 105.83 + (rng.below(10_000) - 5000) / 100_000
      gps = [lat, lon]
    }
    // Plain values; device.mjs writes them with the types of `GridDoc::add_visit`.
    const fields = {
      place: team.prefix + place.id,
      volunteer: device.username,
      device: device.deviceId,
      at,
      outcome,
      handbook: done,
      briefed,
      poster,
      banner: done && place.kind === "market",
      led_playing: done && place.kind === "led_screen",
      note,
      lat: gps?.[0] ?? null,
      lon: gps?.[1] ?? null,
    }
    out.push([code, uuidV7(), fields])
  }
  return out
}

// ---------------------------------------------------------------------------------------------- Doorstep

/** A size such as "124.7 MiB" as MiB. */
function mibOf(value, unit) {
  const v = Number(value.replace(/,/g, ""))
  const u = unit.toLowerCase()
  return u.startsWith("k") ? v / 1024 : u.startsWith("g") ? v * 1024 : u === "b" ? v / 1048576 : v
}

const SIZE = String.raw`([\d.,]+)\s*(KiB|kB|KB|MiB|MB|GiB|GB)`

/** The figures `cargo bench --bench sync` prints. Its phase table is read by column name, not position. */
function parseDoorstep(out) {
  const lines = out.split("\n")
  const header = lines.find(l => /^phase\s/.test(l))
  if (!header) throw new Error(`no phase table in the bench output:\n${out}`)
  const row = name => {
    const line = lines.find(l => l.startsWith(name + " "))
    if (!line) throw new Error(`no "${name}" row in the bench output:\n${out}`)
    // Values are right-aligned under their column names.
    const col = title => {
      const at = header.indexOf(title)
      if (at < 0) return null
      const v = line.slice(0, at + title.length).trimEnd().split(/\s+/).pop()
      return v === "-" || v === undefined ? null : Number(v)
    }
    return {
      wallMs: col("wall ms"),
      p50Ms: col("p50 ms"),
      p99Ms: col("p99 ms"),
      reqPerVisit: col("req B/v"),
      respPerVisit: col("resp B/v"),
      serverCpuMs: col("srv cpu"),
      generatorCpuMs: col("gen cpu"),
      respPerSync: col("resp B/sync"),
    }
  }
  const rate = out.match(/visits ingested per second: (\d+) \((\d+) visits in ([\d.]+) ms\)/)
  if (!rate) throw new Error(`no ingest rate in the bench output:\n${out}`)
  // Server memory, one line per server process: "server instance 1 (pid …): peak RSS …, RSS after setup …, at
  // the end …". Summed over instances.
  let server = null
  for (const l of lines.filter(l => /server instance/i.test(l))) {
    const get = re => {
      const m = l.match(new RegExp(re.source + SIZE, "i"))
      return m ? mibOf(m[1], m[2]) : null
    }
    const peak = get(/peak RSS\s*/)
    if (peak == null) continue
    server ??= { peak: 0, afterSetup: 0, setupPeak: 0, end: 0 }
    server.peak += peak
    server.afterSetup += get(/after setup\s*/) ?? NaN
    server.setupPeak += get(/peak during setup\s*/) ?? NaN
    server.end += get(/at the end\s*/) ?? NaN
  }
  const gen = out.match(new RegExp(String.raw`load generator[^\n]*peak RSS\s*` + SIZE, "i"))
  return {
    download: row("initial download"),
    visitSync: row("visit sync"),
    catchUp: row("catch-up"),
    visits: Number(rate[2]),
    ingestMs: Number(rate[3]),
    server,
    generatorRssMiB: gen ? mibOf(gen[1], gen[2]) : null,
  }
}

async function runDoorstep(exe, args) {
  await waitIdle(args, "Doorstep")
  const m0 = machineCpu()
  const child = spawn(exe, ["--devices", String(args.devices), "--visits", String(args.visits), "--restart"], {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
  })
  const f = follow(child.pid)
  let out = ""
  let err = ""
  child.stdout.on("data", d => (out += d))
  child.stderr.on("data", d => (err += d))
  const code = await new Promise(r => child.once("exit", r))
  f.stop()
  const m1 = machineCpu()
  if (code !== 0) throw new Error(`the Doorstep bench failed (${code}):\n${out}${err}`)
  const d = parseDoorstep(out)
  const perVisit = p => (p.reqPerVisit ?? 0) + (p.respPerVisit ?? 0)
  return {
    system: "Doorstep",
    ingestMs: d.ingestMs,
    visitsPerSec: (d.visits / d.ingestMs) * 1000,
    convergeMs: d.visitSync.wallMs + d.catchUp.wallMs,
    p50Ms: d.visitSync.p50Ms,
    p99Ms: d.visitSync.p99Ms,
    wirePerVisit: perVisit(d.visitSync) + perVisit(d.catchUp),
    ingestBytesPerVisit: perVisit(d.visitSync),
    serverCpu:
      d.visitSync.serverCpuMs != null ? (d.visitSync.serverCpuMs + (d.catchUp.serverCpuMs ?? 0)) / 1000 : null,
    devicesCpu:
      d.visitSync.generatorCpuMs != null ? (d.visitSync.generatorCpuMs + (d.catchUp.generatorCpuMs ?? 0)) / 1000 : null,
    downloadMs: d.download.wallMs,
    downloadBytesPerDevice: d.download.respPerSync,
    serverRssMiB: d.server?.peak ?? null,
    serverRssAfterSetupMiB: d.server?.afterSetup ?? null,
    serverRssSetupPeakMiB: d.server?.setupPeak ?? null,
    serverRssEndMiB: d.server?.end ?? null,
    generatorRssMiB: d.generatorRssMiB,
    treeRssMiB: f.seen.hwm / 1024,
    treeCpu: f.seen.cpu,
    otherCpu: Math.max(0, m1.busy - m0.busy - f.seen.cpu),
    otherShare: Math.max(0, m1.busy - m0.busy - f.seen.cpu) / (m1.total - m0.total),
    raw: out,
  }
}

// ---------------------------------------------------------------------------------------------- the peer

/** Watches the server's nodefs storage: how many visits each document holds on disk. */
class StorageWatch {
  constructor(dir) {
    this.dir = dir
    this.docs = new Map() // documentId -> { doc, files: Map(path -> size), visits, places }
  }
  async check(documentId) {
    let st = this.docs.get(documentId)
    if (!st) this.docs.set(documentId, (st = { doc: A.init(), files: new Map(), ids: new Set(), visits: 0, places: 0 }))
    const base = path.join(this.dir, documentId.slice(0, 2), documentId.slice(2))
    let changed = false
    for (const kind of ["snapshot", "incremental"]) {
      let names
      try {
        names = await fs.promises.readdir(path.join(base, kind))
      } catch {
        continue
      }
      for (const name of names) {
        const file = path.join(base, kind, name)
        try {
          const bytes = await fs.promises.readFile(file)
          if (st.files.get(file) === bytes.length) continue
          st.doc = A.loadIncremental(st.doc, bytes)
          st.files.set(file, bytes.length)
          changed = true
        } catch {
          // Removed by a compaction, or caught half-written: the next look sees the result.
        }
      }
    }
    if (changed) {
      st.ids = new Set(st.doc.visits ? Object.keys(st.doc.visits) : [])
      st.visits = st.ids.size
      st.places = st.doc.places ? Object.keys(st.doc.places).length : 0
    }
    return st
  }
}

/** A device in its worker thread (device.mjs), and what it last reported. */
class DeviceWorker {
  constructor(init) {
    this.username = init.username
    this.deviceId = init.deviceId
    this.sent = 0
    this.received = 0
    this.held = 0
    this.waiting = new Map()
    this.worker = new Worker(new URL("./device.mjs", import.meta.url), { workerData: { device: init } })
    this.worker.on("message", msg => {
      this.sent = msg.sent ?? this.sent
      this.received = msg.received ?? this.received
      if (msg.held != null) this.held = msg.held
      if (msg.cmd === "error") this.failed = new Error(`${this.username}: ${msg.error}`)
      const w = this.waiting.get(msg.cmd)
      if (w) {
        this.waiting.delete(msg.cmd)
        w(msg)
      }
    })
    this.worker.on("error", e => (this.failed = e))
  }
  ask(cmd, reply, extra = {}) {
    return new Promise((resolve, reject) => {
      this.worker.postMessage({ cmd, ...extra })
      const check = setInterval(() => {
        if (this.failed) {
          clearInterval(check)
          reject(this.failed)
        }
      }, 50)
      this.waiting.set(reply, msg => {
        clearInterval(check)
        resolve(msg)
      })
    })
  }
  get bytes() {
    return this.sent + this.received
  }
}

/** The p-th percentile by nearest rank, as benches/sync.rs; null when some value is missing (a device that never
 *  got there). */
function percentile(values, p) {
  if (values.some(x => x == null)) return null
  const v = [...values].sort((a, b) => a - b)
  return v[Math.min(Math.max(Math.ceil(p * v.length), 1), v.length) - 1]
}

const bytesOf = devices => devices.reduce((s, d) => s + d.bytes, 0)

async function runPeer(kind, grids, args) {
  const { devices: n, visits: m } = args
  const total = n * m
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "peer-bench-"))
  const dataDir = path.join(tmp, "data")
  const port = await freePort()
  const url = `ws://127.0.0.1:${port}`
  const startServer = async () => {
    const child = spawn(process.execPath, [PEERS[kind].script()], {
      cwd: tmp,
      env: { ...process.env, PORT: String(port), DATA_DIR: dataDir, DEBUG: "" },
      stdio: ["ignore", "pipe", "pipe"],
    })
    await waitForLine(child, /Listening on port/, PEERS[kind].label)
    return child
  }
  const devices = []
  let server = null
  try {
    server = await startServer()
    const watch = new StorageWatch(dataDir)

    // ---- seed: a client imports each team's grid documents; wait until the server has stored all of them ----
    const { teams, teamOf } = teamsOf(n, grids)
    const seeder = new Repo({ network: [new WebSocketClientAdapter(url)], storage: new MemoryStorage(), peerId: "seeder" })
    const docs = teams.flatMap(team =>
      team.grids.map(g => {
        const handle = seeder.import(g.bytes)
        return { grid: g, team, url: handle.url, id: handle.documentId }
      }),
    )
    const seedStart = performance.now()
    await until(async () => {
      for (const d of docs) if ((await watch.check(d.id)).places !== d.grid.places.length) return false
      return true
    }, 600_000, "the server storing the seeded grids")
    const seedMs = performance.now() - seedStart
    await seeder.shutdown()
    await sleep(200)
    // As `benches/sync.rs --restart`: the server starts again on its data dir, so that its memory is that of
    // serving what is on disk, not of having been seeded; then its peak is reset, as the bench does, so that the
    // peak reported is that of the sync (the initial download included).
    server.kill("SIGTERM")
    await exited(server)
    server = await startServer()
    const serverAfterSeed = procStatus(server.pid)
    fs.writeFileSync(`/proc/${server.pid}/clear_refs`, "5")

    // ---- devices, each in its own thread; initial download one device at a time, then offline ----
    let downloadMs = 0
    for (let i = 1; i <= n; i++) {
      const team = teamOf(i - 1)
      const dev = new DeviceWorker({
        url,
        peerId: `bench-device-${i}`,
        username: `bench-vol-${String(i).padStart(3, "0")}`,
        deviceId: uuidV7(),
        docs: docs.filter(d => d.team === team).map(d => ({ code: d.grid.code, url: d.url, places: d.grid.places.length })),
        storage: args.deviceStorage,
      })
      dev.team = team
      devices.push(dev)
      downloadMs += (await dev.ask("download", "downloaded")).ms
    }
    const downloadBytes = bytesOf(devices)

    // ---- record offline: the same visits as benches/sync.rs, one change each ----
    const rng = new Rng(0x5eedd00d2021n)
    const expected = new Map(docs.map(d => [d.grid.code, 0]))
    const docByCode = new Map(docs.map(d => [d.grid.code, d]))
    let recordMs = 0
    for (const d of devices) {
      const visits = drawVisits(d, d.team, m, rng)
      d.visitIds = visits.map(([code, id]) => [docByCode.get(code).id, id])
      for (const [code] of visits) expected.set(code, expected.get(code) + 1)
      const r = await d.ask("record", "recorded", { visits })
      if (r.held !== m) throw new Error(`${d.username} recorded ${r.held} visits, expected ${m}`)
      recordMs += r.ms
    }
    const bytesBefore = bytesOf(devices)
    // Every device ends holding all its team's visits.
    const teamTotal = d => d.team.size * m
    const allHeld = devices.reduce((s, d) => s + teamTotal(d), 0)

    // ---- all devices reconnect at once ----
    await waitIdle(args, PEERS[kind].label)
    const cpu0 = procCpu(server.pid)
    const self0 = process.cpuUsage()
    const m0 = machineCpu()
    const start = performance.now()
    for (const d of devices) d.worker.postMessage({ cmd: "online" })
    let ingestMs = null
    let ingestServerCpu = null
    let ingestDriverCpu = null
    let ingestBytes = null
    let convergeMs = null
    const serverDone = new Set()
    let lastReport = start
    const storedNow = () => docs.reduce((s, d) => s + (watch.docs.get(d.id)?.visits ?? 0), 0)
    const progress = () => {
      const stored = storedNow()
      const held = devices.reduce((s, d) => s + d.held, 0)
      return `${fmt((performance.now() - start) / 1000, 1)} s: the server stored ${stored} of ${total} visits; the devices hold ${held} of ${allHeld}; server CPU ${fmt(procCpu(server.pid) - cpu0, 1)} s; ${fmt(bytesOf(devices) - bytesBefore)} B moved`
    }
    // A peer that does not converge in time is reported with what it reached, and the run fails at the end.
    let unfinished = null
    let storedAtTimeout = null
    while (ingestMs === null || convergeMs === null) {
      for (const d of devices) if (d.failed) throw d.failed
      if (performance.now() - start > args.timeout * 1000) {
        storedAtTimeout = storedNow()
        unfinished = `no convergence within ${args.timeout} s: ${progress()}`
        console.error(unfinished)
        break
      }
      if (args.verbose && performance.now() - lastReport > 10_000) {
        lastReport = performance.now()
        console.error(progress())
      }
      await sleep(20)
      if (ingestMs === null) {
        for (const d of docs) {
          if (serverDone.has(d.id)) continue
          const st = await watch.check(d.id)
          if (st.visits > expected.get(d.grid.code)) throw new Error(`the server holds too many visits in ${d.grid.code}`)
          if (st.visits === expected.get(d.grid.code)) serverDone.add(d.id)
        }
        if (serverDone.size === docs.length) {
          ingestMs = performance.now() - start
          ingestServerCpu = procCpu(server.pid) - cpu0
          const u = process.cpuUsage(self0)
          ingestDriverCpu = (u.user + u.system) / 1e6
          ingestBytes = bytesOf(devices) - bytesBefore
        }
      }
      const now = performance.now() - start
      for (const d of devices) {
        // Per device, as Doorstep's sync latency: until the server stored all its visits, and until it holds all
        // its team's.
        d.storedMs ??= d.visitIds.every(([doc, id]) => watch.docs.get(doc)?.ids.has(id)) ? now : null
        d.convergedMs ??= d.held === teamTotal(d) ? now : null
      }
      if (convergeMs === null && devices.every(d => d.convergedMs != null)) convergeMs = now
    }
    // Until nothing moves any more.
    let last = unfinished ? bytesOf(devices) : -1
    while (bytesOf(devices) !== last) {
      last = bytesOf(devices)
      await sleep(300)
    }
    const m1 = machineCpu()
    const serverCpu = procCpu(server.pid) - cpu0
    const self = process.cpuUsage(self0)
    const driverCpu = (self.user + self.system) / 1e6
    const syncBytes = bytesOf(devices) - bytesBefore
    const status = procStatus(server.pid)
    const heldAtEnd = devices.reduce((s, d) => s + d.held, 0)
    for (const d of devices) {
      const r = await d.ask("stop", "stopped")
      if (!unfinished && r.held !== teamTotal(d)) {
        throw new Error(`${d.username} holds ${r.held} visits at the end, expected ${teamTotal(d)}`)
      }
    }
    return {
      system: PEERS[kind].label,
      unfinished,
      heldAtEnd,
      allHeld,
      versions: PEERS[kind].versions(),
      seedMs,
      downloadMs,
      downloadBytesPerDevice: downloadBytes / n,
      recordMs,
      ingestMs,
      // Unfinished: the visits stored per second until the timeout, which its throughput cannot exceed.
      visitsPerSec: ingestMs === null ? (storedAtTimeout / args.timeout) : (total / ingestMs) * 1000,
      convergeMs,
      ingestBytesPerVisit: ingestBytes / total,
      wirePerVisit: syncBytes / total,
      serverRssMiB: status.hwm / 1024,
      serverRssAfterSetupMiB: serverAfterSeed.rss / 1024,
      serverRssSetupPeakMiB: serverAfterSeed.hwm / 1024,
      serverRssEndMiB: status.rss / 1024,
      serverCpu,
      driverCpu,
      devicesCpu: driverCpu,
      ingestServerCpu,
      ingestDriverCpu,
      p50Ms: percentile(devices.map(d => d.storedMs), 0.5),
      p99Ms: percentile(devices.map(d => d.storedMs), 0.99),
      convergeP50Ms: percentile(devices.map(d => d.convergedMs), 0.5),
      convergeP99Ms: percentile(devices.map(d => d.convergedMs), 0.99),
      otherCpu: Math.max(0, m1.busy - m0.busy - serverCpu - driverCpu),
      otherShare: Math.max(0, m1.busy - m0.busy - serverCpu - driverCpu) / (m1.total - m0.total),
    }
  } finally {
    await Promise.all(devices.map(d => d.worker.terminate()))
    if (server) {
      server.kill("SIGTERM")
      await exited(server)
    }
    fs.rmSync(tmp, { recursive: true, force: true })
  }
}

async function until(check, timeoutMs, what) {
  const start = performance.now()
  while (!(await check())) {
    if (performance.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`)
    await sleep(20)
  }
}

// ---------------------------------------------------------------------------------------------- report

const fmt = (v, digits = 0) =>
  v == null || Number.isNaN(v) ? "–" : v.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits })

function table(rows) {
  const widths = rows[0].map((_, c) => Math.max(...rows.map(r => String(r[c]).length)))
  return rows
    .map(r => r.map((cell, c) => (c === 0 ? String(cell).padEnd(widths[c]) : String(cell).padStart(widths[c]))).join("  "))
    .join("\n")
}

function report(args, round, d, peers) {
  const n = args.devices * args.visits
  console.log(`\n=== round ${round}: ${args.devices} devices × ${args.visits} visits = ${n} visits ===`)
  const all = d ? [d, ...peers] : peers
  const rows = [
    ["system", "visits/s", "ingest ms", "p50 ms", "p99 ms", "converge ms", "server CPU s", "devices CPU s", "wire B/visit", "RSS peak MiB", "after setup", "setup peak", "at end", "others' CPU"],
  ]
  for (const r of all) {
    rows.push([
      r.system,
      (r.unfinished ? "≤ " : "") + fmt(r.visitsPerSec, r.unfinished ? 1 : 0),
      fmt(r.ingestMs, 1),
      fmt(r.p50Ms, 1),
      fmt(r.p99Ms, 1),
      fmt(r.convergeMs, 1),
      fmt(r.serverCpu, 2),
      fmt(r.devicesCpu, 2),
      fmt(r.wirePerVisit),
      fmt(r.serverRssMiB, 1),
      fmt(r.serverRssAfterSetupMiB, 1),
      fmt(r.serverRssSetupPeakMiB, 1),
      fmt(r.serverRssEndMiB, 1),
      `${fmt(r.otherShare * 100)}%${disturbed(r) ? " !" : ""}`,
    ])
  }
  console.log(table(rows))
  console.log("visits/s, ingest: from the moment all devices sync until the server has stored every visit (Doorstep:")
  console.log("  the visit sync, every visit committed to SQLite and projected; peer: its nodefs files hold every visit)")
  console.log("p50, p99: per device (Doorstep: its visit sync, request to reply; peer: from reconnecting until the server's")
  console.log("  files hold all its visits)")
  console.log("converge: until every device holds all its team's visits (Doorstep: visit sync + catch-up); – if not")
  console.log("  within --timeout (the run then fails, with the figures measured until then)")
  console.log("server CPU, devices CPU: user + system time until converged, of the server process and of the devices")
  console.log("wire: HTTP bodies (Doorstep, gzip) / websocket message payloads (peer), both ways, until converged")
  console.log("RSS: the server process, restarted on its data dir after the setup (Doorstep: accounts, territory,")
  console.log("  devices enrolled; peer: grids seeded); peak (VmHWM) from the initial download to convergence; after the")
  console.log("  setup and restart, with the peak until then; at the end (VmRSS)")
  console.log(
    `others' CPU: share of the machine other processes used while it was measured (Doorstep: the whole bench; peer: the sync);` +
      ` "!" above ${DISTURBED * 100}% (and 0.5 CPU s): disturbed, left out of the summary`,
  )
  console.log()
  console.log(
    table([
      ["initial download (one device at a time)", "wall ms", "B per device"],
      ...all.map(r => [r.system, fmt(r.downloadMs), fmt(r.downloadBytesPerDevice)]),
    ]),
  )
  if (d) {
    console.log(
      `Doorstep: load generator peak RSS ${fmt(d.generatorRssMiB, 1)} MiB; other processes' CPU during the whole bench ${fmt(d.otherCpu, 2)} s`,
    )
  }
  for (const p of peers.filter(p => p.unfinished)) {
    console.log(`FAILED: ${p.system}: ${p.unfinished} (figures measured until then)`)
  }
  for (const p of peers) {
    console.log(
      `${p.system}: seeding ${fmt(p.seedMs)} ms; recording ${fmt(p.recordMs)} ms; until ingested: ` +
        `${fmt(p.ingestBytesPerVisit)} B/visit, server ${fmt(p.ingestServerCpu, 2)} CPU s, devices ${fmt(p.ingestDriverCpu, 2)} CPU s; ` +
        `other processes' CPU while syncing ${fmt(p.otherCpu, 2)} s`,
    )
  }
  const ratios = []
  if (d) {
    console.log("Doorstep ÷ peer:")
    for (const p of peers) {
      // A peer that did not finish within --timeout took at least that long: its ratios are bounds.
      const atLeast = ms => ms ?? args.timeout * 1000
      const r = {
        peer: p.system,
        bound: p.unfinished != null,
        throughput: d.visitsPerSec / p.visitsPerSec,
        converge: atLeast(p.convergeMs) / d.convergeMs,
        p99: atLeast(p.p99Ms) / d.p99Ms,
        serverCpu: d.serverCpu / p.serverCpu,
        peak: d.serverRssMiB / p.serverRssMiB,
        end: d.serverRssEndMiB / p.serverRssEndMiB,
        wire: d.wirePerVisit / p.wirePerVisit,
      }
      r.disturbed = disturbed(d) || disturbed(p)
      ratios.push(r)
      const ge = r.bound ? "≥ " : ""
      console.log(
        `  vs ${p.system}${r.bound ? " (unfinished: at least)" : ""}: throughput ${ge}×${fmt(r.throughput, 2)}; ` +
          `p99 latency ${ge}${fmt(r.p99, 2)}× as short; convergence ${ge}${fmt(r.converge, 2)}× as fast; ` +
          `server CPU ×${fmt(r.serverCpu, 2)}; server memory ×${fmt(r.peak, 2)} at peak, ×${fmt(r.end, 2)} at the end; wire bytes ×${fmt(r.wire, 2)}`,
      )
    }
  }
  return { ratios, systems: all }
}

/** Medians over the rounds, leaving out any system's run that other processes disturbed. */
function summary(rounds) {
  if (rounds.length < 2) return
  const median = xs => {
    const v = xs.filter(x => x != null && !Number.isNaN(x)).sort((a, b) => a - b)
    if (v.length === 0) return NaN
    return v.length % 2 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2
  }
  const span = (xs, digits) => {
    const v = xs.filter(x => x != null && !Number.isNaN(x))
    if (v.length === 0) return "–"
    return `${fmt(median(v), digits)} (${fmt(Math.min(...v), digits)}–${fmt(Math.max(...v), digits)})`
  }
  console.log(`\n=== ${rounds.length} rounds: median (lowest–highest), disturbed runs left out ===`)
  const names = [...new Set(rounds.flatMap(r => r.systems.map(s => s.system)))]
  const rows = [["system", "runs", "visits/s", "p50 ms", "p99 ms", "converge ms", "server CPU s", "RSS peak MiB", "RSS at end MiB"]]
  for (const name of names) {
    const runs = rounds.flatMap(r => r.systems).filter(s => s.system === name && !disturbed(s))
    rows.push([
      name,
      runs.length,
      span(runs.map(r => r.visitsPerSec), 0),
      span(runs.map(r => r.p50Ms), 0),
      span(runs.map(r => r.p99Ms), 0),
      span(runs.map(r => r.convergeMs), 0),
      span(runs.map(r => r.serverCpu), 2),
      span(runs.map(r => r.serverRssMiB), 1),
      span(runs.map(r => r.serverRssEndMiB), 1),
    ])
  }
  console.log(table(rows))
  const peers = [...new Set(rounds.flatMap(r => r.ratios.map(x => x.peer)))]
  if (peers.length === 0) return
  console.log("Doorstep ÷ peer, within each round:")
  const ratioRows = [["peer", "rounds", "throughput", "p99, × as short", "convergence, × as fast", "server CPU", "memory at peak", "memory at end"]]
  for (const peer of peers) {
    const rs = rounds.flatMap(r => r.ratios).filter(r => r.peer === peer && !r.disturbed)
    ratioRows.push([
      peer,
      rs.length,
      span(rs.map(r => r.throughput), 2),
      span(rs.map(r => r.p99), 2),
      span(rs.map(r => r.converge), 2),
      span(rs.map(r => r.serverCpu), 2),
      span(rs.map(r => r.peak), 2),
      span(rs.map(r => r.end), 2),
    ])
  }
  console.log(table(ratioRows))
}

async function main() {
  const args = parseArgs(process.argv.slice(2))
  const profile = args.release ? "release" : "debug"
  console.error(`building doorstep and the sync bench (${profile})…`)
  const release = args.release ? ["--release"] : []
  run("cargo", ["build", ...release, "--quiet", "--bin", "doorstep"], { stdio: ["ignore", "ignore", "inherit"] })
  const doorstep = path.join(ROOT, "target", profile, "doorstep")
  const built = run("cargo", [args.release ? "bench" : "test", "--bench", "sync", "--no-run", "--quiet", "--message-format=json"], {
    stdio: ["ignore", "pipe", "inherit"],
  })
  const bench = built
    .split("\n")
    .filter(l => l.startsWith("{"))
    .map(l => JSON.parse(l))
    .find(m => m.reason === "compiler-artifact" && m.target?.name === "sync" && m.executable)?.executable
  if (!bench) throw new Error("cargo did not report the sync bench executable")

  console.error("reading the demo grid documents…")
  const grids = await demoGrids(doorstep)
  const places = grids.reduce((s, g) => s + g.places.length, 0)
  const saved = grids.reduce((s, g) => s + g.bytes.length, 0)
  console.log(
    `${grids.length} grids, ${places} places; the documents saved: ${fmt(saved)} B in all (${grids.map(g => g.changes).join("/")} changes each)`,
  )
  let commit = "?"
  try {
    commit = run("git", ["rev-parse", "--short", "HEAD"]).trim()
    const dirty = run("git", ["status", "--porcelain", "--", "Cargo.toml", "Cargo.lock", "src", "server", "client-core", "benches/sync.rs"])
    if (dirty.trim()) commit += " with uncommitted changes to Doorstep"
  } catch {}
  console.log(`Doorstep at ${commit}; node ${process.version}; ${run("rustc", ["--version"]).trim()}; ${os.cpus().length} CPUs`)
  console.log(
    `peers: ${args.peers.map(p => PEERS[p].versions()).join("; ")}; clients: automerge-repo ${pkgVersion("@automerge/automerge-repo")}, ` +
      `automerge-repo-network-websocket ${pkgVersion("@automerge/automerge-repo-network-websocket")}, automerge ${pkgVersion("@automerge/automerge")}`,
  )

  const ratios = []
  for (let round = 1; round <= args.rounds; round++) {
    console.error(`round ${round}: Doorstep…`)
    const d = args.doorstep ? await runDoorstep(bench, args) : null
    const peers = []
    for (const p of args.peers) {
      console.error(`round ${round}: ${PEERS[p].label}…`)
      peers.push(await runPeer(p, grids, args))
    }
    ratios.push(report(args, round, d, peers))
  }
  summary(ratios)
  if (ratios.some(r => r.systems.some(s => s.unfinished))) process.exit(1)
}

main().catch(e => {
  console.error(e?.stack ?? e)
  process.exit(1)
})
