// A stand-in for facerec-launcher's HTTP API (issue 11, API11) with in-memory data, so the page
// (launcher/web/index.html) and enrol.mjs can be exercised without GStreamer or models.
// No dependencies. Usage:
//   node launcher/tests/browser/mock-server.mjs [--port 8099] [--token secret] [--quiet]
// It prints "listening on <url>" once ready.
//   - cameras "door" (face A, a stranger until enrolled) and "yard" (face B, always a stranger);
//   - a new event every second, alternating cameras, and 130 seeded events over the past 3 hours,
//     some of them named "O'Brien <b>" (a name that must be escaped) for "Not …";
//   - enrolling an event of face A under a name makes the later events and /api/cameras name it;
//   - photo uploads: a file that is not a JPEG or PNG is "not an image", one whose name contains
//     "noface" has "no face found", "twofaces" has 2 faces;
//   - error statuses and texts as the launcher's (launcher/tests/page.rs compares them);
//   - write routes need "Authorization: Bearer <token>" when --token is given.
import http from "node:http";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { FACE_A, FACE_B, FACE_C } from "./jpegs.mjs";

const args = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : fallback;
};
const PORT = Number(opt("--port", "8099"));
const TOKEN = opt("--token", null);
const QUIET = args.includes("--quiet");
const PAGE = fileURLToPath(new URL("../../web/index.html", import.meta.url));
const UNKNOWN = "unknown";
const FACES = { A: FACE_A, B: FACE_B, C: FACE_C };

// ---- state -------------------------------------------------------------------------------------
const events = []; // StoredEvent plus .face (A/B/C), oldest first
let nextEventId = 1;
let nextPhotoId = 1;
const people = new Map(); // name -> { photos: [{id, jpeg}], rejects: [{face}] }
const enrolledFace = new Map(); // face key -> person name
const strangerOf = { A: "stranger-1", B: "stranger-2" };
const cameraFace = { door: "A", yard: "B" };
const tracks = { door: { id: 1, age: 0 }, yard: { id: 100, age: 0 } };
const sseClients = new Set();

function addPhoto(name, jpeg) {
  if (!people.has(name)) people.set(name, { photos: [], rejects: [] });
  people.get(name).photos.push({ id: String(nextPhotoId++), jpeg });
}
addPhoto("O'Brien <b>", FACE_C);

function nameFor(face) {
  const name = enrolledFace.get(face);
  if (!name) return UNKNOWN;
  const p = people.get(name);
  return p && !p.rejects.some((r) => r.face === face) ? name : UNKNOWN;
}

function makeEvent({ camera, face, kind, name, timeMs, trackId }) {
  const unknown = name === UNKNOWN;
  const id = nextEventId++;
  const e = {
    id, camera, kind, name,
    stranger: unknown ? strangerOf[face] || null : null,
    distance: unknown ? 0.71 : 0.38,
    confidence: unknown ? null : 0.87,
    quality: 0.62,
    track_id: trackId,
    box: face === "A" ? [120, 80, 96, 120] : [400, 60, 40, 52],
    first_seen: new Date(timeMs - 3000).toISOString(),
    last_seen: new Date(timeMs).toISOString(),
    time: new Date(timeMs).toISOString(),
    face_url: `/api/history/${id}/face.jpg`,
  };
  Object.defineProperty(e, "face", { value: face, enumerable: false });
  events.push(e);
  return e;
}

// Seeded history: 130 events over the past 3 hours.
{
  const now = Date.now();
  for (let i = 0; i < 130; i++) {
    const t = now - (130 - i) * 80_000;
    const face = i % 7 === 3 ? "C" : i % 2 ? "A" : "B";
    const name = face === "C" ? "O'Brien <b>" : UNKNOWN;
    makeEvent({ camera: face === "B" ? "yard" : "door", face, kind: face === "C" ? "named" : i % 3 === 2 ? "ended" : "unknown", name, timeMs: t, trackId: 1000 + i });
  }
}

function broadcast(e) {
  const data = `event: recognition\ndata: ${JSON.stringify(e)}\n\n`;
  for (const res of sseClients) res.write(data);
}

// One new event a second, alternating cameras; a track lasts 6 ticks of its camera.
let tick = 0;
setInterval(() => {
  const camera = tick++ % 2 ? "yard" : "door";
  const face = cameraFace[camera];
  const track = tracks[camera];
  const name = nameFor(face);
  let kind;
  if (track.age === 0) kind = name === UNKNOWN ? "unknown" : "named";
  else if (track.name !== name) kind = name === UNKNOWN ? "unknown" : "renamed";
  else if (track.age === 5) kind = "ended";
  track.name = name;
  if (kind) broadcast(makeEvent({ camera, face, kind, name, timeMs: Date.now(), trackId: track.id }));
  track.age++;
  if (kind === "ended") { track.id++; track.age = 0; track.name = undefined; }
}, 1000).unref?.();

// ---- helpers -----------------------------------------------------------------------------------
function send(res, status, body, type = "application/json") {
  const data = type === "application/json" ? JSON.stringify(body) : body;
  res.writeHead(status, { "content-type": type, "cache-control": "no-store" });
  res.end(data);
}
const fail = (res, status, error) => send(res, status, { error });
const authorised = (req) => !TOKEN || req.headers.authorization === `Bearer ${TOKEN}`;

function personJson(name) {
  const p = people.get(name);
  const base = `/api/people/${encodeURIComponent(name)}/photos/`;
  const photos = p.photos.map((ph) => ({ id: ph.id, url: base + encodeURIComponent(ph.id) }));
  return { name, photos, thumbnail: photos[0]?.url ?? null, rejects: p.rejects.length };
}

// A string as Rust's `{:?}` shows it (the launcher's texts quote names that way).
const debug = (text) => `"${[...text].map((c) => ({ '"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\0": "\\0" })[c] ??
  (/\p{Cc}/u.test(c) ? `\\u{${c.codePointAt(0).toString(16)}}` : c)).join("")}"`;

// The launcher's check_folder_name (launcher/src/library.rs) over check_person_name
// (gst-facerec/core/src/gallery.rs), with its texts; a refusal is a 422.
function checkName(name) {
  const chars = [...name];
  const bad = (why) => `the name ${debug(chars.slice(0, 40).join(""))} ${why}`;
  if (!name.trim()) return bad("is empty");
  const control = chars.find((c) => /\p{Cc}/u.test(c));
  if (control) return bad(`contains a control character (U+${control.codePointAt(0).toString(16).toUpperCase().padStart(4, "0")})`);
  if (chars.length > 128) return bad("is longer than 128 characters");
  if (name !== name.trim()) return bad("starts or ends with white space");
  if (/[\/\\]/.test(name)) return bad("contains a slash");
  if (name.startsWith(".")) return bad("starts with a dot");
  if (Buffer.byteLength(name) > 255) return bad("is longer than 255 bytes");
  return null;
}
const NAME_BODY = 'expected a JSON body {"name": "…"}';

function body(req, limit = 16 << 20) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on("data", (c) => {
      size += c.length;
      if (size > limit) { reject(Object.assign(new Error("too large"), { status: 413 })); req.destroy(); }
      else chunks.push(c);
    });
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

async function json(req) {
  try { return JSON.parse((await body(req)).toString("utf8")); } catch { return null; }
}

// Minimal multipart/form-data parser: [{name, filename, data}].
function multipart(buf, contentType) {
  const m = /boundary=(?:"([^"]+)"|([^;]+))/.exec(contentType || "");
  if (!m) return null;
  const delim = Buffer.from("--" + (m[1] || m[2]));
  const parts = [];
  let pos = buf.indexOf(delim);
  while (pos >= 0) {
    const start = pos + delim.length;
    if (buf.slice(start, start + 2).toString() === "--") break;
    const headEnd = buf.indexOf("\r\n\r\n", start);
    const next = buf.indexOf(delim, headEnd);
    if (headEnd < 0 || next < 0) break;
    const head = buf.slice(start + 2, headEnd).toString("utf8");
    const name = /name="([^"]*)"/.exec(head)?.[1];
    const filename = /filename="([^"]*)"/.exec(head)?.[1];
    parts.push({ name, filename, data: buf.slice(headEnd + 4, next - 2) });
    pos = next;
  }
  return parts;
}

function queryHistory(q) {
  let list = events.slice().reverse();
  const camera = q.get("camera"), name = q.get("name"), stranger = q.get("stranger");
  const unknown = q.get("unknown"), since = q.get("since"), until = q.get("until");
  // The launcher's checks, in its order (launcher/src/http/history.rs); its time parser's own
  // reason is not imitated.
  if (unknown && !["true", "1", "false", "0"].includes(unknown)) return { error: `unknown=${debug(unknown)}: use true or false` };
  const limitText = q.get("limit") || "50";
  const limit = /^[0-9]+$/.test(limitText) ? Number(limitText) : NaN;
  if (!(limit >= 1 && limit <= 500)) return { error: `limit=${debug(limitText)}: use 1 to 500` };
  const cursor = q.get("cursor");
  if (cursor && !/^-?[0-9]+$/.test(cursor)) return { error: `cursor=${debug(cursor)} is not a cursor` };
  for (const [k, v] of [["since", since], ["until", until]])
    if (v && isNaN(Date.parse(v))) return { error: `${k}=${debug(v)} is not an RFC 3339 time` };
  if (camera) list = list.filter((e) => e.camera === camera);
  if (name) list = list.filter((e) => e.name === name);
  if (stranger) list = list.filter((e) => e.stranger === stranger);
  if (unknown === "true" || unknown === "1") list = list.filter((e) => e.name === UNKNOWN);
  if (unknown === "false" || unknown === "0") list = list.filter((e) => e.name !== UNKNOWN);
  if (since) list = list.filter((e) => Date.parse(e.time) >= Date.parse(since));
  if (until) list = list.filter((e) => Date.parse(e.time) <= Date.parse(until));
  if (cursor) list = list.filter((e) => e.id < Number(cursor));
  const page = list.slice(0, limit);
  const more = list.length > limit;
  return { events: page, next_cursor: more ? String(page[page.length - 1].id) : null };
}

function cameras() {
  return Object.entries(cameraFace).map(([name, face]) => ({
    name, state: "playing", reason: null, since: new Date().toISOString(), output_fps: 15,
    faces: [{ track_id: tracks[name].id, name: nameFor(face), distance: 0.5, quality: 0.6, confidence: 0.8, box: [10, 10, 40, 50], score: 0.9 }],
  }));
}

function page() {
  const esc = (s) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
  const cards = Object.keys(cameraFace).map((n) => {
    const name = esc(n);
    return `<div class="camera" data-name="${name}"><img alt="live stream of ${name}" src="/cameras/${name}/stream.mjpg"><div class="meta"><strong>${name}</strong></div><div class="people"></div></div>`;
  }).join("");
  return readFileSync(PAGE, "utf8").replace("<!--CAMERAS-->", cards);
}

// ---- routes ------------------------------------------------------------------------------------
async function handle(req, res) {
  const url = new URL(req.url, "http://mock");
  const path = url.pathname;
  const seg = path.split("/").slice(1).map((s) => { try { return decodeURIComponent(s); } catch { return null; } });
  const write = req.method !== "GET" && req.method !== "HEAD";
  if (write && !authorised(req)) return fail(res, 401, "a valid bearer token is required");
  if (seg.includes(null)) return fail(res, 400, "malformed path");

  if (req.method === "GET" && path === "/") return send(res, 200, page(), "text/html; charset=utf-8");
  if (req.method === "GET" && path === "/api/cameras") return send(res, 200, cameras());
  if (req.method === "GET" && seg[0] === "cameras" && seg[2] === "stream.mjpg" && seg.length === 3) {
    const face = cameraFace[seg[1]];
    if (!face) return fail(res, 404, `no camera named ${seg[1]}`);
    res.writeHead(200, { "content-type": "multipart/x-mixed-replace; boundary=frame", "cache-control": "no-store" });
    const frame = () => {
      const jpeg = FACES[face];
      res.write(`--frame\r\nContent-Type: image/jpeg\r\nContent-Length: ${jpeg.length}\r\n\r\n`);
      res.write(jpeg);
      res.write("\r\n");
    };
    frame();
    const timer = setInterval(frame, 1000);
    req.on("close", () => clearInterval(timer));
    return;
  }
  if (req.method === "GET" && path === "/api/events") {
    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-store" });
    for (const e of events.slice(-50)) res.write(`event: recognition\ndata: ${JSON.stringify(e)}\n\n`);
    sseClients.add(res);
    req.on("close", () => sseClients.delete(res));
    return;
  }
  if (seg[0] === "api" && seg[1] === "history") {
    if (seg.length === 2 && req.method === "GET") {
      const r = queryHistory(url.searchParams);
      return r.error ? fail(res, 400, r.error) : send(res, 200, r);
    }
    const id = Number(seg[2]);
    if (!(/^[0-9]+$/.test(seg[2] || "") && id > 0)) return fail(res, 404, `no history event ${debug(seg[2] ?? "")}`);
    const event = events.find((e) => e.id === id);
    if (!event) return fail(res, 404, `no history event ${id}`);
    if (seg.length === 3 && req.method === "GET") return send(res, 200, event);
    if (seg.length === 3 && req.method === "DELETE") {
      events.splice(events.indexOf(event), 1);
      res.writeHead(204); return res.end();
    }
    if (seg.length === 4 && seg[3] === "face.jpg" && req.method === "GET") return send(res, 200, FACES[event.face], "image/jpeg");
    if (seg.length === 4 && seg[3] === "enrol" && req.method === "POST") {
      const b = await json(req);
      const name = b && b.name;
      if (typeof name !== "string") return fail(res, 422, NAME_BODY);
      const problem = checkName(name);
      if (problem) return fail(res, 422, problem);
      addPhoto(name, FACES[event.face]);
      if (event.face !== "C") enrolledFace.set(event.face, name);
      const p = people.get(name);
      p.rejects = p.rejects.filter((r) => r.face !== event.face);
      return send(res, 201, personJson(name));
    }
    if (seg.length === 4 && seg[3] === "reject" && req.method === "POST") {
      if (event.name === UNKNOWN) return fail(res, 409, `event ${id} gave no name, so there is none to reject`);
      if (!people.has(event.name)) people.set(event.name, { photos: [], rejects: [] });
      people.get(event.name).rejects.push({ face: event.face });
      return send(res, 200, { name: event.name, event: id });
    }
    return fail(res, 405, "method not allowed");
  }
  if (seg[0] === "api" && seg[1] === "people") {
    if (seg.length === 2 && req.method === "GET") return send(res, 200, [...people.keys()].sort().map(personJson));
    const name = seg[2];
    // A rename checks the new name first.
    if (seg.length === 3 && req.method === "PUT") {
      const b = await json(req);
      const to = b && b.name;
      if (typeof to !== "string") return fail(res, 422, NAME_BODY);
      const bad = checkName(to) || checkName(name);
      if (bad) return fail(res, 422, bad);
      const person = people.get(name);
      if (!person) return fail(res, 404, `no person named ${debug(name)}`);
      if (to !== name) {
        if (!people.has(to)) people.set(to, { photos: [], rejects: [] });
        const target = people.get(to);
        target.photos.push(...person.photos);
        target.rejects.push(...person.rejects);
        people.delete(name);
        for (const [face, n] of enrolledFace) if (n === name) enrolledFace.set(face, to);
      }
      return send(res, 200, personJson(to));
    }
    const problem = checkName(name);
    if (problem) return fail(res, 422, problem);
    if (seg.length === 4 && seg[3] === "photos" && req.method === "POST") {
      let buf;
      try { buf = await body(req); } catch (e) { return fail(res, e.status || 400, "the upload is too large"); }
      const files = (multipart(buf, req.headers["content-type"]) || []).filter((p) => p.name === "photo");
      if (!files.length) return fail(res, 422, "no photo in the request (multipart field \"photo\")");
      const jpeg = (d) => d[0] === 0xff && d[1] === 0xd8 && d[2] === 0xff;
      const png = (d) => d.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
      for (const f of files) {
        const label = f.filename || "photo";
        if (!jpeg(f.data) && !png(f.data)) return fail(res, 422, `${label}: not an image (JPEG or PNG)`);
        if (label.includes("noface")) return fail(res, 422, `${label}: no face found`);
        if (label.includes("twofaces")) return fail(res, 422, `${label}: 2 faces found; a library photo must show one person`);
      }
      for (const f of files) addPhoto(name, f.data);
      return send(res, 201, personJson(name));
    }
    const person = people.get(name);
    if (seg.length === 5 && seg[3] === "photos") {
      const id = seg[4];
      if (!/^[a-z0-9-]{1,64}$/.test(id)) return fail(res, 404, `no photo ${debug(id)}`);
      const photo = person?.photos.find((ph) => ph.id === id);
      if (!photo) return fail(res, 404, `no photo ${id} of ${debug(name)}`);
      if (req.method === "GET") return send(res, 200, photo.jpeg, "image/jpeg");
      if (req.method === "DELETE") {
        person.photos.splice(person.photos.indexOf(photo), 1);
        if (!person.photos.length) people.delete(name);
        res.writeHead(204); return res.end();
      }
    }
    if (!person) return fail(res, 404, `no person named ${debug(name)}`);
    if (seg.length === 3 && req.method === "DELETE") {
      people.delete(name);
      for (const [face, n] of enrolledFace) if (n === name) enrolledFace.delete(face);
      res.writeHead(204); return res.end();
    }
    return fail(res, 405, "method not allowed");
  }
  if (req.method === "GET" && path === "/api/library/export")
    return send(res, 200, Buffer.from("mock model.data\n"), "application/octet-stream");
  return fail(res, 404, `no route ${req.method} ${path}`);
}

const server = http.createServer((req, res) => {
  if (!QUIET) console.log(`${req.method} ${req.url}`);
  handle(req, res).catch((e) => { console.error(e); if (!res.headersSent) fail(res, 500, String(e)); });
});
server.listen(PORT, "127.0.0.1", () => console.log(`listening on http://127.0.0.1:${server.address().port}`));
