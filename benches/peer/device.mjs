// One simulated device for compare.mjs, run in its own worker thread: its own Repo, websocket client, storage
// and event loop, as a phone has. (With all devices on one event loop, the loop falls so far behind that the
// server's websocket keep-alive closes the devices' connections in the middle of the sync.)
//
// Driven by messages from compare.mjs: download, record, online, stop. Reports how many visits it holds and how
// many bytes it sent and received.

import * as A from "@automerge/automerge"
import { Repo } from "@automerge/automerge-repo"
import { WebSocketClientAdapter } from "@automerge/automerge-repo-network-websocket"
import { isMainThread, parentPort, workerData } from "node:worker_threads"
import { performance } from "node:perf_hooks"

/** Storage kept in memory: the device persists like a real client, so the server treats it as a durable peer. */
export class MemoryStorage {
  data = new Map()
  async load(key) {
    return this.data.get(key.join("/"))
  }
  async save(key, bytes) {
    this.data.set(key.join("/"), bytes)
  }
  async remove(key) {
    this.data.delete(key.join("/"))
  }
  async loadRange(prefix) {
    const p = prefix.join("/")
    const out = []
    for (const [k, data] of this.data) if (k === p || k.startsWith(p + "/")) out.push({ key: k.split("/"), data })
    return out
  }
  async removeRange(prefix) {
    for (const { key } of await this.loadRange(prefix)) this.data.delete(key.join("/"))
  }
}

/** A websocket client adapter that counts the bytes of the messages it sends and receives. */
export class CountingClient extends WebSocketClientAdapter {
  sent = 0
  received = 0
  constructor(url) {
    // The server is up and on loopback: a retry could only fire because the socket is slow to open, and it
    // would open a second socket while the server still talks on the first.
    super(url, 600_000)
    const onMessage = this.onMessage
    this.onMessage = event => {
      this.received += event.data.byteLength
      onMessage(event)
    }
  }
  connect(peerId, meta) {
    super.connect(peerId, meta)
    const socket = this.socket
    const send = socket.send.bind(socket)
    socket.send = (data, ...rest) => {
      this.sent += data.byteLength
      return send(data, ...rest)
    }
  }
}

const sleep = ms => new Promise(r => setTimeout(r, ms))

/** A visit as `GridDoc::add_visit` writes it: scalar strings, a timestamp, booleans, f64 coordinates. */
function visitObject(v) {
  const S = s => new A.ImmutableString(s)
  const o = {
    place: S(v.place),
    volunteer: S(v.volunteer),
    device: S(v.device),
    at: new Date(v.at),
    outcome: S(v.outcome),
    handbook: v.handbook,
    briefed: v.briefed,
    poster: v.poster,
    banner: v.banner,
    led_playing: v.led_playing,
  }
  if (v.note != null) o.note = S(v.note)
  if (v.lat != null) {
    o.lat = new A.Float64(v.lat)
    o.lon = new A.Float64(v.lon)
  }
  return o
}

async function device({ url, peerId, docs, storage }) {
  const adapter = new CountingClient(url)
  let repo = null
  let handles = null
  // Visits held, per grid; a grid is recounted only after it changed, so that watching costs the device little.
  const counts = new Map()
  const dirty = new Set()
  const held = () => {
    for (const code of dirty) counts.set(code, Object.keys(handles.get(code).doc().visits).length)
    dirty.clear()
    let n = 0
    for (const c of counts.values()) n += c
    return n
  }
  const post = msg => parentPort.postMessage({ ...msg, sent: adapter.sent, received: adapter.received })
  let reporting = null

  parentPort.on("message", async msg => {
    try {
      if (msg.cmd === "download") {
        const start = performance.now()
        repo = new Repo({ network: [adapter], storage: storage ? new MemoryStorage() : undefined, peerId })
        const found = await Promise.all(docs.map(d => repo.find(d.url)))
        const ms = performance.now() - start
        found.forEach((h, i) => {
          if (Object.keys(h.doc().places).length !== docs[i].places) throw new Error(`grid ${docs[i].code} arrived without its places`)
        })
        handles = new Map(found.map((h, i) => [docs[i].code, h]))
        for (const [code, h] of handles) {
          dirty.add(code)
          h.on("heads-changed", () => dirty.add(code))
        }
        // Let the last sync messages settle, then go offline.
        let last = -1
        while (adapter.sent + adapter.received !== last) {
          last = adapter.sent + adapter.received
          await sleep(300)
        }
        adapter.disconnect()
        post({ cmd: "downloaded", ms })
      } else if (msg.cmd === "record") {
        const start = performance.now()
        for (const [code, id, fields] of msg.visits) {
          handles.get(code).change(doc => {
            doc.visits[id] = visitObject(fields)
          })
        }
        const ms = performance.now() - start
        await sleep(300) // the device's own storage writes
        post({ cmd: "recorded", ms, held: held() })
      } else if (msg.cmd === "online") {
        adapter.connect(adapter.peerId, adapter.peerMetadata)
        let lastHeld = -1
        reporting = setInterval(() => {
          const n = held()
          post({ cmd: "progress", held: n, changed: n !== lastHeld })
          lastHeld = n
        }, 20)
      } else if (msg.cmd === "stop") {
        clearInterval(reporting)
        const final = { held: held() }
        await repo.shutdown()
        post({ cmd: "stopped", ...final })
        setTimeout(() => process.exit(0), 50)
      }
    } catch (e) {
      parentPort.postMessage({ cmd: "error", error: e?.stack ?? String(e) })
    }
  })
}

if (!isMainThread && workerData?.device) device(workerData.device)
