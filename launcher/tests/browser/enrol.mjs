// Issue 11, "Enrol from history, end to end in a real browser": drives Debian's Chromium
// (/usr/bin/chromium, headless) with puppeteer-core through the launcher's page:
//   History shows a stranger with a face thumbnail that loaded -> "This is…" -> NAME -> submit
//   -> the token prompt, which must appear (the server must require TOKEN) -> the live faces or
//   a new event name NAME -> the Library lists NAME with a photo thumbnail that loaded.
// Install puppeteer-core with deploy/tests/setup-browser.sh, then:
//   node launcher/tests/browser/enrol.mjs BASE_URL TOKEN NAME
// Env: SCREENSHOT=path.png (taken at the end, and on failure), STRANGER=stranger-7 (enrol that
// stranger; otherwise the stranger event with the largest face box, the main subject),
// VIEWPORT=390x844 (default 1280x900), NODE_PATH (puppeteer-core's node_modules; default .cache/browser-node/node_modules),
// CHROMIUM (default /usr/bin/chromium).
// Prints each step with its time since the start; exits 0 on success, 1 with "FAILED: …".
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import path from "node:path";

const [base, token, name] = process.argv.slice(2);
if (!base || !token || !name) {
  console.error("usage: node enrol.mjs BASE_URL TOKEN NAME");
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

const started = Date.now();
const step = (text) => console.log(`[${((Date.now() - started) / 1000).toFixed(2).padStart(6)} s] ${text}`);
class Failure extends Error {}
const fail = (text) => { throw new Failure(text); };
const url = (hash) => base.replace(/\/+$/, "") + "/" + hash;

// Polls `fn` in the page (with `args`) until it returns a truthy value; null after `seconds`.
async function poll(page, seconds, fn, ...args) {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    const value = await page.evaluate(fn, ...args);
    if (value) return value;
    if (Date.now() > deadline) return null;
    await new Promise((r) => setTimeout(r, 250));
  }
}

const browser = await puppeteer.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  // Tests run as root, where Chromium's sandbox cannot start.
  args: ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
});
const page = await browser.newPage();
const [vw, vh] = (process.env.VIEWPORT || "1280x900").split("x").map(Number);
await page.setViewport({ width: vw, height: vh });
const pageErrors = [];
page.on("pageerror", (e) => { pageErrors.push(e.message); console.log(`page error: ${e.message}`); });
// Each distinct console error once: a missing route would otherwise repeat every poll.
const consoleSeen = new Set();
page.on("console", (m) => {
  if (m.type() !== "error" || consoleSeen.has(m.text())) return;
  consoleSeen.add(m.text());
  console.log(`page console (first of its kind): ${m.text()}`);
});

let code = 0;
try {
  step(`browser ${await browser.version()}; opening ${url("#history")}`);
  await page.goto(url("#history"), { waitUntil: "domcontentloaded", timeout: 30_000 });
  if (!(await page.$("#view-history:not([hidden])"))) fail("#history did not open the History view");

  // 1. A stranger with a face thumbnail.
  step("waiting up to 60 s for a stranger (name unknown) with a face thumbnail in History");
  const wanted = process.env.STRANGER || null;
  let lastReload = Date.now();
  let chosen = null;
  for (const deadline = Date.now() + 60_000; !chosen; ) {
    chosen = await page.evaluate((wanted) => {
      const candidates = [...document.querySelectorAll("#history-list li.event")].filter((li) =>
        li.dataset.name === "unknown" && li.dataset.stranger && li.querySelector("img.face") &&
        li.querySelector("button.enrol") && (!wanted || li.dataset.stranger === wanted));
      const area = (li) => { const b = (li.dataset.box || "").split(",").map(Number); return (b[2] || 0) * (b[3] || 0); };
      candidates.sort((a, b) => area(b) - area(a) || Number(b.dataset.id) - Number(a.dataset.id));
      const li = candidates[0];
      return li ? { id: li.dataset.id, stranger: li.dataset.stranger, camera: li.dataset.camera, box: li.dataset.box } : null;
    }, wanted);
    if (chosen) break;
    if (Date.now() > deadline) {
      const seen = await page.evaluate(() => ({
        events: document.querySelectorAll("#history-list li.event").length,
        error: document.querySelector("#history-error").textContent,
      }));
      fail(`no stranger${wanted ? " " + wanted : ""} with a face thumbnail in History within 60 s (History lists ${seen.events} event(s)${seen.error ? "; it says: " + seen.error : ""})`);
    }
    if (Date.now() - lastReload > 5000) { await page.click("#f-apply"); lastReload = Date.now(); }
    await new Promise((r) => setTimeout(r, 500));
  }
  const item = `#history-list li.event[data-id="${chosen.id}"]`;
  step(`found event ${chosen.id}: ${chosen.stranger} on camera ${chosen.camera}, box ${chosen.box}`);

  // 2. Its thumbnail really loaded.
  await page.$eval(item, (li) => li.scrollIntoView({ block: "center" }));
  const thumb = await poll(page, 15, (sel) => {
    const img = document.querySelector(sel + " img.face");
    return img && img.complete && img.naturalWidth > 0 ? `${img.naturalWidth}x${img.naturalHeight} from ${img.getAttribute("src")}` : null;
  }, item);
  if (!thumb) fail(`event ${chosen.id}'s face thumbnail did not load (naturalWidth 0)`);
  step(`its face thumbnail loaded: ${thumb}`);

  // 3. "This is…", the name, submit.
  await page.click(`${item} button.enrol`);
  await page.waitForSelector(`${item} form.enrol-form:not([hidden]) input.enrol-name`, { visible: true, timeout: 5000 });
  await page.type(`${item} input.enrol-name`, name);
  await page.click(`${item} button.enrol-submit`);
  step(`clicked "This is…", typed ${JSON.stringify(name)}, submitted`);

  // 4. The token prompt: the server wants a token and this session has none yet, so the write
  // must be refused and the page must ask for it before anything else happens.
  const first = await poll(page, 30, (sel) => {
    if (!document.querySelector("#token-form").hidden) return { state: "token", label: document.querySelector("#token-label").textContent };
    const li = document.querySelector(sel);
    return li?.dataset.state ? { state: li.dataset.state, text: li.querySelector(".error")?.textContent || li.querySelector(".notice")?.textContent || "" } : null;
  }, item);
  if (!first) fail("neither the token prompt nor a result of the enrolment within 30 s");
  if (first.state !== "token") fail(`the page did not ask for the API token: the enrolment ended as "${first.state}" (${first.text})`);
  if (first.label !== "This action needs the API token") fail(`the token prompt says "${first.label}", not "This action needs the API token"`);
  step(`the page asked for the API token ("${first.label}"); entering it`);
  await page.type("#token-input", token);
  await page.click("#token-submit");
  const state = await poll(page, 30, (sel) => {
    const li = document.querySelector(sel);
    if (!document.querySelector("#token-form").hidden) return { state: "token", text: document.querySelector("#token-label").textContent };
    return li?.dataset.state ? { state: li.dataset.state, text: (li.querySelector(".error")?.textContent || li.querySelector(".notice")?.textContent || "") } : null;
  }, item);
  if (!state) fail("no result of the enrolment within 30 s after the token");
  if (state.state === "token") fail(`the token was not accepted: ${state.text}`);
  if (state.state !== "enrolled") fail(`the enrolment failed; the page says: ${state.text}`);
  const kept = await page.evaluate(() => sessionStorage.getItem("facerec-api-token"));
  step(`enrolled: the page says "${state.text}"; the token is kept for the session: ${kept === token}`);
  if (kept !== token) fail("the token was not kept in sessionStorage");

  // 5. The live faces or a new event name them.
  step(`waiting up to 60 s for ${JSON.stringify(name)} in the live faces or a new event`);
  const seen = await poll(page, 60, (name, enrolled) => {
    const where = [];
    for (const card of document.querySelectorAll(".camera[data-name]"))
      if ([...card.querySelectorAll(".people .known")].some((s) => s.textContent === name)) where.push(`live faces of camera ${card.dataset.name}`);
    for (const li of document.querySelectorAll("#events li.event, #history-list li.event"))
      if (li.dataset.name === name && Number(li.dataset.id) > enrolled)
        where.push(`${li.closest("#events") ? "live" : "history"} event ${li.dataset.id} (${li.dataset.kind}, ${li.dataset.camera})`);
    return where.length ? [...new Set(where)].join("; ") : null;
  }, name, Number(chosen.id));
  if (!seen) fail(`${JSON.stringify(name)} did not appear in the live faces nor in a new event within 60 s`);
  step(`named: ${seen}`);

  // 6. The library lists NAME with a photo that loaded.
  await page.click("#tab-library");
  await page.waitForSelector("#view-library:not([hidden])", { timeout: 5000 });
  const card = await poll(page, 15, (name) => {
    const card = [...document.querySelectorAll("#people .person")].find((p) => p.dataset.name === name);
    if (!card) return null;
    card.scrollIntoView({ block: "center" });
    const imgs = [...card.querySelectorAll("img.photo-img")];
    const loaded = imgs.filter((i) => i.complete && i.naturalWidth > 0);
    return loaded.length ? `${imgs.length} photo(s), ${loaded.length} loaded (${loaded[0].naturalWidth}x${loaded[0].naturalHeight})` : null;
  }, name);
  if (!card) {
    const listed = await page.evaluate(() => [...document.querySelectorAll("#people .person")].map((p) => p.dataset.name));
    fail(`the Library does not list ${JSON.stringify(name)} with a loaded photo within 15 s (it lists ${JSON.stringify(listed)}; ${await page.$eval("#library-error", (e) => e.textContent || "no error shown")})`);
  }
  step(`the Library lists ${JSON.stringify(name)}: ${card}`);
  if (pageErrors.length) fail(`the page threw: ${pageErrors.join(" | ")}`);
  step("PASSED");
} catch (e) {
  code = 1;
  console.error(`FAILED: ${e instanceof Failure ? e.message : e.stack || e}`);
} finally {
  if (process.env.SCREENSHOT) {
    try {
      await page.screenshot({ path: process.env.SCREENSHOT, fullPage: false });
      step(`screenshot: ${process.env.SCREENSHOT}`);
    } catch (e) {
      console.error(`could not take the screenshot: ${e.message}`);
    }
  }
  await browser.close();
}
process.exit(code);
