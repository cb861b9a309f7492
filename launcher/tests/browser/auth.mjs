// Sign-in in a real browser (Debian's Chromium, headless, driven by puppeteer-core) against a
// launcher with sign-in on (launcher/tests/signin.rs runs it against the real launcher on the
// sample clip; run-mock.sh against mock-server.mjs --users):
//   node launcher/tests/browser/auth.mjs BASE_URL ADMIN_PASSWORD VIEWER_NAME VIEWER_PASSWORD [SCREENSHOT_DIR]
// The server must have: the user "admin" (role admin) with ADMIN_PASSWORD and VIEWER_NAME (role
// viewer); a camera whose stream plays; at least one history event; at least one person with a
// photo in the library.
// Checks, one line each: / redirects to /login; a wrong password shows the server's error; the
// admin signs in and sees the stream, the history and the library with every write control; the
// viewer, in a fresh browser context, signs in and is shown no write control, is refused the
// export and a write (403), signs out with #sign-out, and the session cookie no longer works.
// Env: NODE_PATH (puppeteer-core's node_modules; default .cache/browser-node/node_modules),
// CHROMIUM (default /usr/bin/chromium).
// Exits 0 when every check holds, 1 with "FAILED: …" otherwise.
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

const [base, adminPassword, viewerName, viewerPassword, shots = tmpdir()] = process.argv.slice(2);
if (!base || !adminPassword || !viewerName || !viewerPassword) {
  console.error("usage: node auth.mjs BASE_URL ADMIN_PASSWORD VIEWER_NAME VIEWER_PASSWORD [SCREENSHOT_DIR]");
  process.exit(2);
}
const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
const modules = process.env.NODE_PATH || path.join(repo, ".cache/browser-node/node_modules");
let puppeteer;
try {
  puppeteer = createRequire(path.join(modules, "/"))("puppeteer-core");
} catch (e) {
  console.error(`FAILED: puppeteer-core is not in ${modules} (run deploy/tests/setup-browser.sh): ${e.message}`);
  process.exit(1);
}
mkdirSync(shots, { recursive: true });

const started = Date.now();
const step = (text) => console.log(`[${((Date.now() - started) / 1000).toFixed(2).padStart(6)} s] ${text}`);
class Failure extends Error {}
function check(ok, text) { if (!ok) throw new Failure(text); step(`ok: ${text}`); }
async function poll(page, seconds, fn, ...args) {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    const value = await page.evaluate(fn, ...args);
    if (value) return value;
    if (Date.now() > deadline) return null;
    await new Promise((r) => setTimeout(r, 250));
  }
}
const origin = base.replace(/\/+$/, "");
const u = (p) => origin + p;
const VIEWER_REFUSAL = "this needs the admin role; viewer can only watch";
// What a viewer must not be shown: every control that changes something.
const WRITE_CONTROLS = ["#new-person", ".upload-form", ".upload-input", ".delete-photo", "button.rename", ".rename-form",
  ".delete-person", ".erase-person", ".export-person", "#history-list .actions", "button.enrol", ".enrol-form", "button.reject", "button.delete-event"];

const browser = await puppeteer.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  // Tests run as root, where Chromium's sandbox cannot start.
  args: ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
});
const errors = [];
// A fresh context (its own cookies) and page, with page errors and CSP violations recorded.
async function freshPage(who) {
  const context = await browser.createBrowserContext();
  const page = await context.newPage();
  await page.setViewport({ width: 1280, height: 900 });
  page.on("pageerror", (e) => errors.push(`${who}: ${e.message}`));
  page.on("console", (m) => { if (/Content.Security.Policy/i.test(m.text())) errors.push(`${who}: ${m.text()}`); });
  return { context, page };
}
const pathOf = (page) => { const url = new URL(page.url()); return url.pathname + url.search + url.hash; };

// Types into the login form and submits it; resolves once the page has navigated (success).
async function signIn(page, user, password) {
  await page.$eval("#user", (e) => { e.value = ""; });
  await page.$eval("#password", (e) => { e.value = ""; });
  await page.type("#user", user);
  await page.type("#password", password);
  await Promise.all([page.waitForNavigation({ waitUntil: "domcontentloaded", timeout: 20_000 }), page.click("#login-submit")]);
}

// What the Library shows, for a failure's message.
const libraryState = (page) => page.evaluate(() => ({
  people: [...document.querySelectorAll("#people .person")].map((p) => p.dataset.name + ": " + p.querySelectorAll("img.photo-img").length + " photos"),
  error: document.querySelector("#library-error").textContent, status: document.querySelector("#library-status").textContent,
}));

// The viewer's write controls present, by selector.
const writeControls = (page) => page.evaluate((sels) => sels.filter((s) => document.querySelector(s)), WRITE_CONTROLS);

let code = 0;
let current = null;
try {
  step(`browser ${await browser.version()}; ${base}`);

  // ---- admin ----
  const admin = await freshPage("admin");
  current = admin.page;
  let response = await admin.page.goto(u("/"), { waitUntil: "domcontentloaded" });
  check(pathOf(admin.page) === "/login?next=%2F" && response.status() === 200,
    `GET / without a session redirects to /login?next=%2F (at ${pathOf(admin.page)}, HTTP ${response.status()})`);
  const csp = response.headers()["content-security-policy"] || "";
  check(/script-src 'sha256-/.test(csp) && !csp.includes("unsafe-inline"), `the login page has a hash-only Content-Security-Policy (${csp.slice(0, 60)}…)`);
  check(await poll(admin.page, 5, () => document.querySelector("#login-form") && document.activeElement === document.querySelector("#user")),
    "the login page shows its form, the user name focused");
  await admin.page.type("#user", "admin");
  await admin.page.type("#password", "not-the-password");
  await admin.page.click("#login-submit");
  check(await poll(admin.page, 10, () => document.querySelector("#login-error").textContent === "wrong user name or password"),
    `a wrong password shows "wrong user name or password" (shown: ${JSON.stringify(await admin.page.$eval("#login-error", (e) => e.textContent))})`);
  check(pathOf(admin.page).startsWith("/login"), "a wrong password stays on /login");
  await admin.page.screenshot({ path: path.join(shots, "login-error.png") });
  await signIn(admin.page, "admin", adminPassword);
  check(pathOf(admin.page) === "/", `the admin signs in and lands on / (at ${pathOf(admin.page)})`);
  const who = await poll(admin.page, 10, () => document.body.dataset.role && {
    role: document.body.dataset.role, auth: document.body.dataset.auth, whoami: document.querySelector("#whoami").textContent,
    signOut: !document.querySelector("#account").hidden && !!document.querySelector("#sign-out"),
  });
  check(who && who.role === "admin" && who.auth === "true" && who.whoami === "admin (admin)" && who.signOut,
    `the page shows "admin (admin)" and a Sign out button (${JSON.stringify(who)})`);
  const me = await admin.page.evaluate(async () => (await fetch("/api/me")).json());
  check(me.name === "admin" && me.role === "admin" && me.via === "session" && me.auth === true, `/api/me: ${JSON.stringify(me)}`);
  const stream = await poll(admin.page, 30, () => [...document.querySelectorAll(".camera img")].map((i) => i.naturalWidth).find((w) => w > 0));
  check(stream, `Live: the camera stream shows (naturalWidth ${stream})`);
  await admin.page.screenshot({ path: path.join(shots, "admin-live.png") });
  await admin.page.click("#tab-history");
  const events = await poll(admin.page, 30, () => document.querySelectorAll("#history-list li.event").length);
  check(events, `History: ${events} events listed`);
  check(await admin.page.evaluate(() => !!document.querySelector("#history-list li.event button.delete-event")), "History: the admin has the event actions");
  await admin.page.click("#tab-library");
  const library = await poll(admin.page, 20, () => {
    // A person with a photo (one from --gallery may have none).
    const card = [...document.querySelectorAll("#people .person")].find((c) => c.querySelector("img.photo-img"));
    return card && {
      people: document.querySelectorAll("#people .person").length,
      buttons: [".upload-form", "button.rename", "button.delete-person", "button.delete-photo", "button.erase-person", "a.export-person"].filter((s) => card.querySelector(s)),
      newPerson: !!document.querySelector("#new-person:not([hidden])"),
    };
  });
  check(library && library.buttons.length === 6 && library.newPerson,
    `Library: people with the admin's controls (${JSON.stringify(library || await libraryState(admin.page))})`);
  await admin.page.screenshot({ path: path.join(shots, "admin-library.png") });

  // ---- viewer, in a context of its own ----
  const viewer = await freshPage("viewer");
  current = viewer.page;
  await viewer.page.goto(u("/#history"), { waitUntil: "domcontentloaded" });
  check(pathOf(viewer.page).startsWith("/login?next=%2F"), `the viewer is sent to sign in (at ${pathOf(viewer.page)})`);
  await signIn(viewer.page, viewerName, viewerPassword);
  check(pathOf(viewer.page) === "/#history", `the viewer signs in and comes back to /#history (at ${pathOf(viewer.page)})`);
  const vwho = await poll(viewer.page, 10, () => document.body.dataset.role && {
    role: document.body.dataset.role, whoami: document.querySelector("#whoami").textContent,
  });
  check(vwho && vwho.role === "viewer" && vwho.whoami === `${viewerName} (viewer)`, `the page shows "${viewerName} (viewer)" (${JSON.stringify(vwho)})`);
  const vevents = await poll(viewer.page, 30, () => document.querySelectorAll("#history-list li.event").length);
  check(vevents, `viewer History: ${vevents} events listed`);
  let shown = await writeControls(viewer.page);
  check(shown.length === 0, `viewer History: no write control rendered (found: ${JSON.stringify(shown)})`);
  await viewer.page.click("#tab-library");
  const vpeople = await poll(viewer.page, 20, () => document.querySelector("#people .person img.photo-img") && document.querySelectorAll("#people .person").length);
  check(vpeople, `viewer Library: ${vpeople || JSON.stringify(await libraryState(viewer.page))} people listed, a photo shown`);
  shown = await writeControls(viewer.page);
  check(shown.length === 0, `viewer Library: no write control rendered (found: ${JSON.stringify(shown)})`);
  await viewer.page.screenshot({ path: path.join(shots, "viewer-library.png") });
  await viewer.page.click("#tab-live");
  const vstream = await poll(viewer.page, 30, () => [...document.querySelectorAll(".camera img")].map((i) => i.naturalWidth).find((w) => w > 0));
  check(vstream, `viewer Live: the camera stream shows (naturalWidth ${vstream})`);
  const refused = await viewer.page.evaluate(async () => {
    const answer = async (r) => ({ status: r.status, error: (await r.json().catch(() => ({}))).error });
    return {
      exported: await answer(await fetch("/api/library/export")),
      reload: await answer(await fetch("/api/gallery/reload", { method: "POST", headers: { "Content-Type": "application/json" }, body: "{}" })),
    };
  });
  check(refused.exported.status === 403 && refused.exported.error === VIEWER_REFUSAL, `viewer: GET /api/library/export is refused: ${JSON.stringify(refused.exported)}`);
  check(refused.reload.status === 403 && refused.reload.error === VIEWER_REFUSAL, `viewer: POST /api/gallery/reload is refused: ${JSON.stringify(refused.reload)}`);
  const cookie = (await viewer.page.cookies()).find((c) => c.name === "facerec_session");
  check(cookie && cookie.httpOnly && cookie.sameSite === "Strict" && cookie.path === "/",
    `the session cookie is HttpOnly, SameSite=Strict, Path=/ (${JSON.stringify(cookie && { httpOnly: cookie.httpOnly, sameSite: cookie.sameSite, path: cookie.path, secure: cookie.secure })})`);
  check(await viewer.page.evaluate(() => !document.cookie.includes("facerec_session")), "the session cookie is out of the page script's reach");
  const withCookie = () => fetch(u("/api/cameras"), { headers: { cookie: `facerec_session=${cookie.value}` } });
  let r = await withCookie();
  check(r.status === 200, `the session cookie alone reads /api/cameras (HTTP ${r.status})`);
  await Promise.all([viewer.page.waitForNavigation({ waitUntil: "domcontentloaded", timeout: 10_000 }), viewer.page.click("#sign-out")]);
  check(pathOf(viewer.page).startsWith("/login"), `#sign-out signs out to /login (at ${pathOf(viewer.page)})`);
  r = await withCookie();
  const body = await r.json().catch(() => null);
  check(r.status === 401 && body && typeof body.error === "string", `the old session cookie is refused after signing out: HTTP ${r.status} ${JSON.stringify(body)}`);
  await viewer.page.goto(u("/"), { waitUntil: "domcontentloaded" });
  check(pathOf(viewer.page).startsWith("/login"), `after signing out / goes to /login again (at ${pathOf(viewer.page)})`);
  // The admin's session is not the viewer's: still signed in.
  current = admin.page;
  const still = await admin.page.evaluate(async () => (await fetch("/api/me")).status);
  check(still === 200, `the admin's session is still valid (HTTP ${still})`);

  // ---- the admin: subject access and erasure from the page ----
  await admin.page.click("#tab-library");
  await poll(admin.page, 20, () => [...document.querySelectorAll("#people .person")].some((c) => c.querySelector("img.photo-img")));
  const exported = await admin.page.evaluate(async () => {
    const card = [...document.querySelectorAll("#people .person")].find((c) => c.querySelector("img.photo-img"));
    const r = await fetch(card.querySelector("a.export-person").href);
    return { name: card.dataset.name, status: r.status, type: r.headers.get("content-type"), size: (await r.arrayBuffer()).byteLength };
  });
  check(exported.status === 200 && exported.type === "application/zip" && exported.size > 0,
    `Library: "Export data" of ${exported.name} is a zip (${JSON.stringify(exported)})`);
  // Two clicks: the first asks, the second erases.
  await admin.page.evaluate((name) => {
    const button = [...document.querySelectorAll("#people .person")].find((c) => c.dataset.name === name).querySelector("button.erase-person");
    button.click(); button.click();
  }, exported.name);
  const notice = await poll(admin.page, 30, (name) => {
    const text = document.querySelector("#library-notice").textContent;
    const gone = ![...document.querySelectorAll("#people .person")].some((c) => c.dataset.name === name && c.querySelector("img.photo-img"));
    return text.startsWith("erased " + name + ": 1 photos, ") && gone && text;
  }, exported.name);
  check(notice, `Library: "Erase everywhere" erases ${exported.name} (${notice || JSON.stringify(await libraryState(admin.page))})`);
  const left = await admin.page.evaluate(async (name) => (await (await fetch("/api/history?limit=500&name=" + encodeURIComponent(name))).json()).events.length, exported.name);
  check(left === 0, `History: no event names ${exported.name} after the erasure (${left})`);
  check(errors.length === 0, `no page errors or CSP violations${errors.length ? ": " + errors.join(" | ") : ""}`);
  step(`PASSED; screenshots in ${shots}`);
} catch (e) {
  code = 1;
  console.error(`FAILED: ${e instanceof Failure ? e.message : e.stack || e}`);
  if (current) await current.screenshot({ path: path.join(shots, "auth-failure.png") }).catch(() => {});
} finally {
  await browser.close();
}
process.exit(code);
