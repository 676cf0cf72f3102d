// sw.js is the web client's service worker. It keeps the client's own
// static files in a cache so the page opens fast and offline: the
// content-hashed assets (cache first: their names change with their
// content) and the page (network first: a new version is seen at once).
// It never caches the API (/v1/) or anything of another origin.
//
// parleyd fills in the two lines below when it starts: the assets'
// paths, and a version that names this set of files (docs/web.md).
"use strict";

self.PARLEY_ASSETS = [];
self.PARLEY_VERSION = "";

const CACHE_PREFIX = "parley-";
const CACHE = CACHE_PREFIX + self.PARLEY_VERSION;
const ASSETS = new Set(self.PARLEY_ASSETS);
const PAGE = "/";

self.addEventListener("install", (event) => {
  event.waitUntil(
    caches.open(CACHE)
      .then((cache) => cache.addAll(self.PARLEY_ASSETS))
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches.keys()
      .then((keys) => Promise.all(
        keys.filter((k) => k.startsWith(CACHE_PREFIX) && k !== CACHE).map((k) => caches.delete(k)),
      ))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") {
    return;
  }
  const url = new URL(request.url);
  if (url.origin !== self.location.origin || url.pathname.startsWith("/v1/")) {
    return;
  }
  if (url.pathname === PAGE || url.pathname === "/index.html") {
    event.respondWith(pageNetworkFirst(request));
  } else if (ASSETS.has(url.pathname)) {
    event.respondWith(assetCacheFirst(request, url.pathname));
  }
});

// pageNetworkFirst fetches the page and keeps it; offline it answers
// with the kept one.
async function pageNetworkFirst(request) {
  const cache = await caches.open(CACHE);
  try {
    const response = await fetch(request);
    if (response.ok) {
      await cache.put(PAGE, response.clone());
    }
    return response;
  } catch (err) {
    const kept = await cache.match(PAGE);
    if (kept) {
      return kept;
    }
    throw err;
  }
}

// assetCacheFirst answers with the kept asset, or fetches and keeps it.
async function assetCacheFirst(request, path) {
  const cache = await caches.open(CACHE);
  const kept = await cache.match(path);
  if (kept) {
    return kept;
  }
  const response = await fetch(request);
  if (response.ok) {
    await cache.put(path, response.clone());
  }
  return response;
}
