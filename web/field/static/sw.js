// Doorstep field app's service worker: keeps every file of the app so it opens, and reloads, with no network.
// The server fills in VERSION (a digest of every file and of the campaign's rules): a new binary brings a new
// worker, which fetches the new files into a new cache and deletes the old one. The rules themselves are read
// from the network first, so that a new campaign version reaches the app at its next start. Calls to /api/ never pass
// through here; visits live in IndexedDB, not in this cache.
const VERSION = "__DOORSTEP_FIELD_VERSION__";
const CACHE = `doorstep-field-${VERSION}`;
const FILES = ["index.html", "app.js", "app.css", "automerge.wasm", "manifest.webmanifest", "icon.svg", "rules.json"];
const SCOPE = new URL("./", self.location).pathname;

self.addEventListener("install", (event) => {
  event.waitUntil(
    caches.open(CACHE)
      .then((cache) => cache.addAll(FILES.map((f) => new Request(f, { cache: "reload" }))))
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches.keys()
      .then((keys) => Promise.all(keys.filter((k) => k.startsWith("doorstep-field-") && k !== CACHE).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (request.method !== "GET" || url.origin !== self.location.origin || !url.pathname.startsWith(SCOPE)) return;
  const cached = (name) => caches.open(CACHE).then((cache) => cache.match(name, { ignoreSearch: true }));
  if (url.pathname === `${SCOPE}rules.json`) {
    // The office can change the campaign without a new app: its rules come from the network when there is one
    // (within a few seconds), and the copy kept for offline use follows.
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), 4000);
    event.respondWith(
      fetch(request, { cache: "no-store", signal: abort.signal })
        .then((fresh) => {
          if (!fresh.ok) return cached("rules.json").then((hit) => hit || fresh);
          const copy = fresh.clone();
          caches.open(CACHE).then((cache) => cache.put("rules.json", copy));
          return fresh;
        })
        .catch(() => cached("rules.json"))
        .finally(() => clearTimeout(timer)),
    );
    return;
  }
  const file = request.mode === "navigate" ? "index.html" : request;
  event.respondWith(cached(file).then((hit) => hit || fetch(request)));
});
