// The explorer's service worker (written into the build by vite.config.ts, which fills in FILES and VERSION).
// Install caches every file of the app (code, page, models, digits); requests of this origin are answered from
// that cache, so the page reloads without a network. A new build has a new VERSION: it installs beside the old
// one, takes over, and deletes the old cache.
const VERSION = '__VERSION__';
const FILES = __FILES__;
const CACHE = `diffuse-explorer-${VERSION}`;

self.addEventListener('install', (event) => {
  event.waitUntil(caches.open(CACHE).then((c) => c.addAll(FILES)).then(() => self.skipWaiting()));
});

self.addEventListener('activate', (event) => {
  event.waitUntil(caches.keys()
    .then((keys) => Promise.all(keys.filter((k) => k.startsWith('diffuse-explorer-') && k !== CACHE).map((k) => caches.delete(k))))
    .then(() => self.clients.claim()));
});

self.addEventListener('fetch', (event) => {
  const req = event.request;
  if (req.method !== 'GET' || new URL(req.url).origin !== self.location.origin) return;
  event.respondWith(caches.open(CACHE).then(async (cache) => {
    // The page itself is cached once, whatever its query (?backend=js).
    const hit = await cache.match(req, { ignoreSearch: req.mode === 'navigate' });
    return hit ?? fetch(req);
  }));
});
