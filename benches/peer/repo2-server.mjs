#!/usr/bin/env node
// The automerge-repo sync server on automerge-repo 2.x.
//
// `@automerge/automerge-repo-sync-server` 0.2.8 (its latest release) still depends on automerge-repo 1.x. This
// is its `src/server.js` rebuilt on the 2.x packages pinned in package.json, with the same configuration: a
// Repo with a websocket server adapter and nodefs storage, peer id `storage-server-<hostname>`, and a share
// policy that never pushes documents a peer did not ask for. Only express is left out: it serves nothing but a
// static folder and a "running" page, which the websocket path does not use.
//
// Configured like the sync server, with environment variables: PORT (default 3030) and DATA_DIR (default
// .amrg). Prints "Listening on port N" once it accepts connections.

import fs from "node:fs"
import http from "node:http"
import os from "node:os"
import { WebSocketServer } from "ws"
import { Repo } from "@automerge/automerge-repo"
import { WebSocketServerAdapter } from "@automerge/automerge-repo-network-websocket"
import { NodeFSStorageAdapter } from "@automerge/automerge-repo-storage-nodefs"

const dir = process.env.DATA_DIR ?? ".amrg"
fs.mkdirSync(dir, { recursive: true })
const port = process.env.PORT !== undefined ? parseInt(process.env.PORT, 10) : 3030

const socket = new WebSocketServer({ noServer: true })
new Repo({
  network: [new WebSocketServerAdapter(socket)],
  storage: new NodeFSStorageAdapter(dir),
  peerId: `storage-server-${os.hostname()}`,
  // As in the sync server: only sync documents a peer already knows about and asks for by id.
  sharePolicy: async () => false,
})

const server = http.createServer((req, res) => {
  res.end("automerge-repo 2.x sync server is running\n")
})
server.on("upgrade", (request, sock, head) => {
  socket.handleUpgrade(request, sock, head, ws => socket.emit("connection", ws, request))
})
server.listen(port, "127.0.0.1", () => console.log(`Listening on port ${port}`))

const stop = () => {
  socket.close()
  server.close()
  process.exit(0)
}
process.on("SIGTERM", stop)
process.on("SIGINT", stop)
