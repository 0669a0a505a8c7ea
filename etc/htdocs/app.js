// The sample page's script: shows which protocol loaded the page and
// calls the built-in API (GET /api/time, POST /api/echo).
"use strict";

function show(id, text) {
  document.getElementById(id).textContent = text;
}

const nav = performance.getEntriesByType("navigation")[0];
show("protocol", nav && nav.nextHopProtocol ? nav.nextHopProtocol : "unknown");

fetch("/api/time")
  .then((r) => (r.ok ? r.json() : Promise.reject(new Error("HTTP " + r.status))))
  .then((j) => show("time", j.time + " (" + j.protocol + ", quicd " + j.version + ")"))
  .catch((e) => show("time", "unavailable: " + e.message));

fetch("/api/echo", { method: "POST", body: "hello from the sample page" })
  .then((r) => (r.ok ? r.json() : Promise.reject(new Error("HTTP " + r.status))))
  .then((j) => show("echo", JSON.stringify(j.body) + " (" + j.length + " bytes)"))
  .catch((e) => show("echo", "unavailable: " + e.message));
