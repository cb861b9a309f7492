// A stand-in for facerec-launcher's HTTP API (issue 11, API11) with in-memory data, so the page
// (launcher/web/index.html) and enrol.mjs can be exercised without GStreamer or models.
// No dependencies. Usage:
//   node launcher/tests/browser/mock-server.mjs [--port 8099] [--token secret]
//        [--users NAME:PASSWORD:ROLE,…] [--quiet]
// It prints "listening on <url>" once ready.
//   - cameras "door" (face A, a stranger until enrolled) and "yard" (face B, always a stranger);
//   - a new event every second, alternating cameras, and 130 seeded events over the past 3 hours,
//     some of them named "O'Brien <b>" (a name that must be escaped) for "Not …";
//   - enrolling an event of face A under a name makes the later events and /api/cameras name it;
//   - photo uploads: a file that is not a JPEG or PNG is "not an image", one whose name contains
//     "noface" has "no face found", "twofaces" has 2 faces;
//   - error statuses and texts as the launcher's (launcher/tests/page.rs compares them);
//   - sign-in as the launcher's (launcher/src/http/auth.rs, login.rs): without --users, sign-in
//     is off (--auth=false): anyone reads, and writes need "Authorization: Bearer <token>" when
//     --token is given; with --users (roles admin or viewer), sign-in is on: GET /login
//     (web/login.html), POST /login (a session cookie), POST /logout, GET /api/me, HTTP Basic,
//     the token as bearer (admin) or a stream's key= (read-only); a viewer's writes and
//     /api/library/export are refused (403); GET / without a session redirects to /login.
import http from "node:http";
import { readFileSync } from "node:fs";
import { createHash, randomBytes } from "node:crypto";
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
const LOGIN_PAGE = fileURLToPath(new URL("../../web/login.html", import.meta.url));
// name -> { password, role }; sign-in is on when any is given.
const USERS = new Map((opt("--users", "") || "").split(",").filter(Boolean).map((u) => {
  const [name, password, role = "admin"] = u.split(":");
  return [name, { password, role }];
}));
const AUTH = USERS.size > 0;
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
  const headers = { "content-type": type, "cache-control": "no-store" };
  if (type.startsWith("text/html")) headers["content-security-policy"] = contentSecurityPolicy(data);
  res.writeHead(status, headers);
  res.end(data);
}
// The launcher's policy (launcher/src/http/headers.rs): the page's one inline script and style
// by hash, nothing else inline.
function contentSecurityPolicy(html) {
  const hash = (tag) => {
    const open = `<${tag}>`;
    const start = html.indexOf(open) + open.length;
    const end = html.indexOf(`</${tag}>`, start);
    return `'sha256-${createHash("sha256").update(html.slice(start, end)).digest("base64")}'`;
  };
  return `default-src 'self'; script-src ${hash("script")}; style-src ${hash("style")}; img-src 'self' data: blob:; ` +
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";
}
const fail = (res, status, error) => send(res, status, { error });

// ---- sign-in (launcher/src/http/auth.rs) -------------------------------------------------------
const SESSION_COOKIE = "facerec_session";
const SIGN_IN_REQUIRED = "sign-in required: a session, an API token (Authorization: Bearer) or HTTP Basic credentials";
const sessions = new Map(); // id -> user name
const failures = new Map(); // user name -> { count, last }
const FREE_FAILURES = 5;

function throttled(user) {
  const f = failures.get(user);
  if (!f || f.count <= FREE_FAILURES) return 0;
  const until = f.last + Math.min(1000 * 2 ** (f.count - FREE_FAILURES), 300_000);
  return until > Date.now() ? Math.max(1, Math.ceil((until - Date.now()) / 1000)) : 0;
}
function failed(user) {
  const f = failures.get(user) || { count: 0, last: 0 };
  failures.set(user, { count: f.count + 1, last: Date.now() });
}
function cookieOf(req) {
  for (const pair of (req.headers.cookie || "").split(";")) {
    const [k, ...v] = pair.trim().split("=");
    if (k === SESSION_COOKIE) return v.join("=");
  }
  return null;
}
const userPrincipal = (name, via) => ({ name, role: USERS.get(name).role, via });

// Who may call a route: "open", "viewer", "stream" (also key=, and a Basic challenge), "admin".
function accessOf(method, seg) {
  if (seg[0] === "login" && seg.length === 1) return "open";
  if (seg[0] === "logout" && seg.length === 1) return "open";
  if (method !== "GET" && method !== "HEAD") return "admin";
  if (seg[0] === "cameras" && seg.length === 3) return "stream";
  if (seg[0] === "api" && ["users", "tokens"].includes(seg[1])) return "admin";
  if (seg[0] === "api" && seg[1] === "library" && seg[2] === "export") return "admin";
  return "viewer";
}

// The caller, null (no credential) or throws "invalid" (a wrong one).
function identify(req, url, access) {
  const auth = req.headers.authorization || "";
  if (auth.startsWith("Bearer ")) {
    if (TOKEN && auth.slice(7).trim() === TOKEN) return { name: "FACEREC_API_TOKEN", role: "admin", via: "api-token" };
    throw "invalid";
  }
  if (auth.startsWith("Basic ")) {
    const text = Buffer.from(auth.slice(6).trim(), "base64").toString("utf8");
    const i = text.indexOf(":");
    const [user, password] = i < 0 ? [text, null] : [text.slice(0, i), text.slice(i + 1)];
    if (USERS.get(user)?.password === password) return userPrincipal(user, "basic");
    throw "invalid";
  }
  const session = cookieOf(req);
  if (session && sessions.has(session) && USERS.has(sessions.get(session))) return userPrincipal(sessions.get(session), "session");
  const key = url.searchParams.get("key");
  if (key != null && access === "stream") {
    if (TOKEN && key === TOKEN) return { name: "FACEREC_API_TOKEN", role: "viewer", via: "key" };
    throw "invalid";
  }
  return null;
}

// Lets the request through (returns the principal, or null on an open route), or answers it.
function authorize(req, res, url, seg) {
  const access = accessOf(req.method, seg);
  let principal;
  try { principal = identify(req, url, access); } catch (e) {
    if (access === "open") principal = null;
    else { refuse(req, res, url, access, "wrong credentials"); return undefined; }
  }
  const write = req.method !== "GET" && req.method !== "HEAD";
  if (!principal && !AUTH && (!TOKEN || (!write && access !== "admin")))
    principal = { name: "anonymous", role: TOKEN ? "viewer" : "admin", via: "open" };
  if (access === "open") return principal;
  if (!principal) { refuse(req, res, url, access, SIGN_IN_REQUIRED); return undefined; }
  if (access === "admin" && principal.role !== "admin") {
    fail(res, 403, `this needs the admin role; ${principal.role} can only watch`);
    return undefined;
  }
  return principal;
}

function refuse(req, res, url, access, message) {
  if (req.method === "GET" && access === "viewer" && (req.headers.accept || "").includes("text/html")) {
    res.writeHead(303, { location: "/login?next=" + encodeURIComponent(url.pathname + url.search), "cache-control": "no-store" });
    return res.end();
  }
  const headers = { "content-type": "application/json", "cache-control": "no-store" };
  if (access === "stream") headers["www-authenticate"] = 'Basic realm="facerec", charset="UTF-8"';
  res.writeHead(401, headers);
  res.end(JSON.stringify({ error: message }));
}

const setCookie = (value, maxAge) => `${SESSION_COOKIE}=${value}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${maxAge}`;

async function login(req, res) {
  const b = await json(req);
  if (!b || typeof b.user !== "string" || typeof b.password !== "string") return fail(res, 400, 'expected a JSON body {"user": "…", "password": "…"}');
  const wait = throttled(b.user);
  if (wait) {
    res.writeHead(429, { "content-type": "application/json", "retry-after": String(wait), "cache-control": "no-store" });
    return res.end(JSON.stringify({ error: `too many failed sign-ins: retry in ${wait} s` }));
  }
  const user = USERS.get(b.user);
  if (!user || user.password !== b.password) { failed(b.user); return fail(res, 401, "wrong user name or password"); }
  failures.delete(b.user);
  const id = randomBytes(32).toString("base64url");
  sessions.set(id, b.user);
  res.writeHead(200, { "content-type": "application/json", "set-cookie": setCookie(id, 43200), "cache-control": "no-store" });
  res.end(JSON.stringify({ name: b.user, role: user.role }));
}

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
    name, state: "playing", reason: null, since: new Date().toISOString(), output_fps: 15, detect_fps: 4.8, overloaded: false,
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
  const principal = authorize(req, res, url, seg);
  if (principal === undefined) return;
  if (seg.includes(null)) return fail(res, 400, "malformed path");

  if (req.method === "GET" && path === "/login") return send(res, 200, readFileSync(LOGIN_PAGE, "utf8"), "text/html; charset=utf-8");
  if (req.method === "POST" && path === "/login") return login(req, res);
  if (req.method === "POST" && path === "/logout") {
    const session = cookieOf(req);
    if (session) sessions.delete(session);
    res.writeHead(204, { "set-cookie": setCookie("", 0), "cache-control": "no-store" });
    return res.end();
  }
  if (req.method === "GET" && path === "/api/me") return send(res, 200, { ...principal, auth: AUTH });
  if (req.method === "POST" && path === "/api/gallery/reload") { res.writeHead(204); return res.end(); }

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
