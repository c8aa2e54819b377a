// The web interface in a real headless Chromium: a mediator and two
// parties, each with their own `backchannel ui` on one test relay, in three
// browser contexts. Run by scripts/test (which builds the binaries first):
//
//   cd crates/ui/browser && npm ci && npm test
//
// Debian's /usr/bin/chromium only (no browser download). Screenshots of
// every view go to target/ui-screenshots/; `scripts/screenshots` copies
// them to docs/ui/.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import readline from "node:readline";
import { chromium } from "playwright-core";

const root = resolve(import.meta.dirname, "../../..");
const target = process.env.CARGO_TARGET_DIR ?? join(root, "target");
const BIN = process.env.BACKCHANNEL_BIN ?? join(target, "debug/backchannel");
const SCENE = process.env.UI_SCENE_BIN ?? join(target, "debug/ui-scene");
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const SHOTS = join(target, "ui-screenshots");
const PASS = "browser test passphrase";
const LIVE = 20_000; // how long a live update may take, in ms

const children = [];
let dir;
let browser;
let scene; // { proc, url, say(cmd) }
const users = {}; // name -> { store, ui, link, base, stderr: [], context, page, requests: [] }

function run(args) {
  return execFileSync(BIN, args, {
    env: { ...process.env, BACKCHANNEL_PASSPHRASE: PASS },
    stdio: ["ignore", "pipe", "pipe"],
    encoding: "utf8",
  });
}

/// Starts a child, killed at the end whatever happens.
function start(cmd, args, env = {}) {
  const proc = spawn(cmd, args, {
    env: { ...process.env, ...env },
    stdio: ["pipe", "pipe", "pipe"],
  });
  children.push(proc);
  return proc;
}

/// The first line of `stream` matching `re`, within 30 s.
function waitLine(stream, re, sink) {
  return new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`no line matching ${re}`)), 30_000);
    readline.createInterface({ input: stream }).on("line", (line) => {
      sink?.push(line);
      const m = line.match(re);
      if (m && timer) {
        clearTimeout(timer);
        ok(m);
      }
    });
  });
}

async function startScene() {
  const proc = start(SCENE, []);
  const [, url] = await waitLine(proc.stdout, /^relay (\S+)$/);
  const answers = readline.createInterface({ input: proc.stdout });
  const pending = [];
  answers.on("line", (l) => pending.shift()?.(l));
  const say = (cmd) =>
    new Promise((ok) => {
      pending.push(ok);
      proc.stdin.write(cmd + "\n");
    });
  return { proc, url, say };
}

async function startUser(name) {
  const store = join(dir, `${name}.store`);
  run(["--store", store, "init", "--relay", scene.url, "--handle", name]);
  const ui = start(BIN, ["--store", store, "ui", "--no-open"], { BACKCHANNEL_PASSPHRASE: PASS });
  const stderr = [];
  const [, link] = await waitLine(ui.stderr, /^\s*open: (\S+)$/, stderr);
  const base = new URL(link).origin;
  const context = await browser.newContext({ viewport: { width: 1000, height: 800 } });
  const page = await context.newPage();
  const requests = [];
  page.on("request", (r) => requests.push(r.url()));
  page.on("dialog", (d) => d.accept());
  users[name] = { name, store, ui, link, base, stderr, context, page, requests };
  return users[name];
}

async function shot(user, view) {
  await user.page.screenshot({ path: join(SHOTS, `${view}.png`), fullPage: true });
}

/// The page fits 640 px without scrolling sideways.
async function fits640(page) {
  const before = page.viewportSize();
  await page.setViewportSize({ width: 640, height: 800 });
  const wide = await page.evaluate(() => document.documentElement.scrollWidth);
  await page.setViewportSize(before);
  return wide <= 640;
}

/// A raw request to a user's interface, with headers fetch would forbid.
function raw(user, { method = "GET", path = "/", headers = {}, body = "" }) {
  const u = new URL(user.base);
  return new Promise((ok, fail) => {
    const req = http.request(
      { host: u.hostname, port: u.port, method, path, headers: { ...headers, "content-length": Buffer.byteLength(body) } },
      (res) => {
        let text = "";
        res.on("data", (c) => (text += c));
        res.on("end", () => ok({ status: res.statusCode, headers: res.headers, text }));
      },
    );
    req.on("error", fail);
    req.end(body);
  });
}

async function cookieOf(user) {
  const [c] = await user.context.cookies(user.base);
  return `${c.name}=${c.value}`;
}

before(async () => {
  assert.ok(existsSync(BIN), `build the binaries first: ${BIN}`);
  mkdirSync(SHOTS, { recursive: true });
  dir = mkdtempSync(join(tmpdir(), "backchannel-ui-"));
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
    ],
  });
  scene = await startScene();
  for (const name of ["mediator", "blue", "red"]) await startUser(name);
});

after(async () => {
  await browser?.close();
  for (const c of children) c.kill("SIGKILL");
  if (dir) rmSync(dir, { recursive: true, force: true });
});

let channel; // hex id

test("each browser redeems its launch link once; a second redemption is refused and reported", async () => {
  for (const u of Object.values(users)) {
    await u.page.goto(u.link);
    assert.equal(new URL(u.page.url()).search, "", "the code left the address bar");
    await u.page.getByRole("heading", { name: "Channels" }).waitFor();
  }
  const thief = await browser.newContext();
  const page = await thief.newPage();
  const r = await page.goto(users.mediator.link);
  assert.equal(r.status(), 403);
  await page.getByText("used already").waitFor();
  await page.screenshot({ path: join(SHOTS, "launch-refused.png") });
  await thief.close();
  const deadline = Date.now() + 5000;
  while (!users.mediator.stderr.some((l) => l.includes("REFUSED")) && Date.now() < deadline) {
    await new Promise((ok) => setTimeout(ok, 50));
  }
  assert.ok(users.mediator.stderr.some((l) => l.includes("REFUSED: someone tried the launch link again")), users.mediator.stderr.join("\n"));
  // The first session may have been the thief's: it is over. Enter on the
  // terminal gives a new link.
  const m = users.mediator;
  const gone = await m.page.goto(m.base + "/");
  assert.equal(gone.status(), 401);
  const links = () => m.stderr.filter((l) => l.trim().startsWith("open: "));
  const before = links().length;
  m.ui.stdin.write("\n");
  const until = Date.now() + 5000;
  while (links().length === before && Date.now() < until) await new Promise((ok) => setTimeout(ok, 50));
  const fresh = links().at(-1).trim().slice("open: ".length);
  assert.notEqual(fresh, m.link);
  await m.page.goto(fresh);
  await m.page.getByRole("heading", { name: "Channels" }).waitFor();
});

test("the mediator proposes; the parties see it live and consent on the consent screen", async () => {
  const out = JSON.parse(
    run(["--store", users.mediator.store, "channel", "create", "--title", "Gulf talks", "--party", "blue", "--party", "red", "--mediator-reads", "--json"]),
  );
  channel = out.channel_id;
  assert.match(channel, /^[0-9a-f]{32}$/);
  for (const name of ["blue", "red"]) {
    const { page } = users[name];
    // Appears without a reload.
    await page.getByText("awaits your consent").waitFor({ timeout: LIVE });
    if (name === "blue") await shot(users.blue, "channels-awaiting-consent");
    await page.getByRole("link", { name: "Gulf talks" }).click();
    await page.getByRole("button", { name: "Accept exactly this proposal" }).waitFor();
    if (name === "blue") {
      await shot(users.blue, "consent");
      assert.ok(await fits640(page), "the consent screen fits 640 px");
    }
    await page.getByRole("button", { name: "Accept exactly this proposal" }).click();
    await page.getByRole("button", { name: "Accept exactly this proposal" }).waitFor({ state: "detached" });
  }
  for (const u of Object.values(users)) {
    await u.page.goto(`${u.base}/channels/${channel}`);
    await u.page
      .locator("#live-members")
      .getByText("Status: active")
      .waitFor({ timeout: LIVE })
      .catch(async (e) => {
        const dump = [];
        for (const v of Object.values(users)) {
          dump.push(`== ${v.name}`, v.stderr.join("\n"), run(["--store", v.store, "outbox"]), run(["--store", v.store, "log", channel.slice(0, 8)]));
        }
        throw new Error(`${u.name}: ${await u.page.locator("#live-members").innerText()}\n${dump.join("\n")}\n${e}`);
      });
  }
});

test("a message sent from the keyboard arrives live in all three, right to left, with receipts", async () => {
  const arabic = "نقترح وقف إطلاق النار عند منتصف الليل";
  const { page } = users.blue;
  await page.locator("#text").focus();
  await page.keyboard.type(arabic);
  await page.keyboard.press("Tab"); // the reply-to choice
  await page.keyboard.press("Tab"); // Preview
  await page.keyboard.press("Enter");
  await page.getByRole("heading", { name: "Preview" }).waitFor();
  await shot(users.blue, "preview");
  await page.getByRole("button", { name: "Send" }).click();
  for (const u of Object.values(users)) {
    const text = u.page.locator("p.text", { hasText: arabic });
    await text.waitFor({ timeout: LIVE });
    const dir = await text.evaluate((el) => getComputedStyle(el).direction);
    assert.equal(dir, "rtl", `${u.name}: the Arabic message runs right to left`);
    const idDir = await u.page.locator("code[dir=ltr]").first().evaluate((el) => getComputedStyle(el).direction);
    assert.equal(idDir, "ltr", "ids stay left to right");
  }
  // Each member's receipt reaches the others live: blue sees red's and the
  // mediator's, red sees the mediator's, the mediator sees red's.
  const seen = { blue: ["red", "mediator"], red: ["mediator"], mediator: ["red"] };
  for (const [viewer, members] of Object.entries(seen)) {
    const msg = users[viewer].page.locator("li.msg").filter({ has: users[viewer].page.locator("p.text", { hasText: arabic }) });
    for (const who of members) {
      await msg.locator(`.receipt.received[data-member="${who}"]`).first().waitFor({ timeout: LIVE });
    }
  }
  const red = users.red.page;
  await red.locator("li.msg", { hasText: arabic }).getByRole("link", { name: "Reply" }).click();
  await red.locator("#text").fill("Agreed, from midnight UTC.");
  await red.getByRole("button", { name: "Preview" }).click();
  await red.getByRole("button", { name: "Send" }).click();
  await page.locator("ol.replies p.text", { hasText: "Agreed, from midnight UTC." }).waitFor({ timeout: LIVE });
  await shot(users.blue, "channel");
  assert.ok(await fits640(page), "the channel view fits 640 px");
  await shot(users.mediator, "channel-mediator");
});

test("an alert appears when the relay drops a message, with what to do; it is dismissed", async () => {
  assert.equal(await scene.say("drop-next red"), "ok");
  const blue = users.blue.page;
  for (const text of ["This one the relay drops.", "This one arrives."]) {
    await blue.locator("#text").fill(text);
    await blue.getByRole("button", { name: "Preview" }).click();
    await blue.getByRole("button", { name: "Send" }).click();
    await blue.locator("p.text", { hasText: text }).waitFor();
  }
  const red = users.red.page;
  // The count in red's navigation updates live.
  await red.locator("#live-nav .count.alert").waitFor({ timeout: LIVE });
  await red.getByRole("link", { name: /Alerts/ }).click();
  const gap = red.locator('li.alert-item[data-kind="gap"]');
  await gap.waitFor();
  await gap.getByText("messages were withheld or lost").waitFor();
  await shot(users.red, "alerts");
  assert.ok(await fits640(red), "the alerts view fits 640 px");
  await gap.getByRole("button", { name: "Dismiss" }).click();
  await red.getByText("No open alerts").waitFor();
  assert.equal(await red.locator("#live-nav .count.alert").count(), 0);
});

test("safety numbers and the outbox are shown", async () => {
  const blue = users.blue.page;
  await blue.getByRole("link", { name: "Safety numbers" }).click();
  await blue.locator("p.number").first().waitFor();
  await shot(users.blue, "safety");
  assert.ok(await fits640(blue), "the safety view fits 640 px");
  await blue.getByRole("link", { name: "Outbox" }).click();
  await blue.getByText("Empty: the relay has taken everything").waitFor();
  await shot(users.blue, "outbox");
  await blue.getByRole("link", { name: "Channels" }).click();
  await shot(users.blue, "channels");
  assert.ok(await fits640(blue), "the channels view fits 640 px");
});

test("requests without the cookie, for another Host, or from another Origin are refused", async () => {
  const blue = users.blue;
  const cookie = await cookieOf(blue);
  const host = new URL(blue.base).host;
  assert.equal((await raw(blue, { path: "/", headers: { host } })).status, 401, "no cookie");
  assert.equal((await raw(blue, { path: "/", headers: { host, cookie } })).status, 200, "the cookie");
  const rebound = await raw(blue, { path: "/", headers: { host: `evil.example:${new URL(blue.base).port}`, cookie } });
  assert.equal(rebound.status, 421, "another Host (DNS rebinding)");
  const form = "text=forged&reply_to=";
  const type = "application/x-www-form-urlencoded";
  const forged = await raw(blue, {
    method: "POST",
    path: `/channels/${channel}/send`,
    headers: { host, cookie, origin: "http://evil.example", "content-type": type },
    body: form,
  });
  assert.equal(forged.status, 403, "another Origin");
  assert.equal(forged.headers["access-control-allow-origin"], undefined, "no CORS");
  await blue.page.goto(`${blue.base}/channels/${channel}`);
  assert.equal(await blue.page.locator("p.text", { hasText: "forged" }).count(), 0, "nothing was sent");
});

/// A second tab of `user` on the channel's board, kept open: it must
/// update by itself.
async function boardTab(user) {
  const tab = await user.context.newPage();
  tab.on("request", (r) => user.requests.push(r.url()));
  await tab.goto(`${user.base}/channels/${channel}/board`);
  await tab.locator("#live-board").waitFor();
  user.board = tab;
  return tab;
}

/// Fills an act's form: text fields by label, selects by value, boxes ticked.
async function fillAct(page, { fields = {}, selects = {}, checks = [] }) {
  for (const [name, value] of Object.entries(fields)) await page.locator(`[name="${name}"]`).fill(value);
  for (const [name, value] of Object.entries(selects)) await page.locator(`select[name="${name}"]`).selectOption(value);
  for (const name of checks) await page.locator(`input[type=checkbox][name="${name}"]`).check();
  // A field with suggestions (the actors) may keep its list open over the
  // buttons: leave it, as a person does before pressing Preview.
  await page.evaluate(() => document.activeElement?.blur());
}

const BLUE_WORDS = "Blue will not strike Red first, as long as it is not attacked first.";
const RED_WORDS = "Red will not strike Blue first.";
let blueAssurance; // hex id

test("an assurance and its reciprocal given through the forms appear live on all three boards", async () => {
  for (const u of Object.values(users)) await boardTab(u);
  const blue = users.blue.page;
  await blue.goto(`${users.blue.base}/channels/${channel}/act`);
  await blue.getByRole("link", { name: "Give an assurance" }).click();
  await fillAct(blue, {
    fields: { wording: BLUE_WORDS, to: "red", unless_attacked_by: "red", authorized_by: "the cabinet" },
    selects: { action: "ASSAULT" },
    checks: ["until_revoked"],
  });
  await shot(users.blue, "act-assure");
  await blue.getByRole("button", { name: "Preview" }).click();
  await blue.getByRole("heading", { name: "Preview: Give an assurance" }).waitFor();
  await blue.locator("dl.terms").getByText("the cabinet").waitFor();
  await shot(users.blue, "act-preview");
  await blue.getByRole("button", { name: "Send" }).click();
  for (const u of Object.values(users)) {
    await u.board.locator("article.commitment", { hasText: BLUE_WORDS }).waitFor({ timeout: LIVE });
  }
  blueAssurance = (await users.red.board.locator("article.commitment", { hasText: BLUE_WORDS }).getAttribute("id")).slice(2);
  const red = users.red.page;
  await red.goto(`${users.red.base}/channels/${channel}/board`);
  await red.locator(`#c-${blueAssurance}`).getByRole("link", { name: "Reciprocate an assurance" }).click();
  assert.equal(await red.locator('select[name="of"]').inputValue(), blueAssurance, "the assurance answered is preselected");
  await fillAct(red, {
    fields: { wording: RED_WORDS, to: "blue", unless_attacked_by: "blue", authorized_by: "the council" },
    selects: { action: "ASSAULT" },
    checks: ["until_revoked"],
  });
  await red.getByRole("button", { name: "Preview" }).click();
  await red.getByRole("button", { name: "Send" }).click();
  for (const u of Object.values(users)) {
    await u.board.locator("article.commitment", { hasText: RED_WORDS }).waitFor({ timeout: LIVE });
    await u.board.locator(`#c-${blueAssurance} .history`, { hasText: "reciprocal" }).waitFor({ timeout: LIVE });
  }
  await shot({ page: users.blue.board }, "board");
  assert.ok(await fits640(users.blue.board), "the board fits 640 px");
});

test("a red line declared in its form; a what-if shows the cascade and its graph", async () => {
  const red = users.red.page;
  await red.goto(`${users.red.base}/channels/${channel}/act/redline`);
  await fillAct(red, {
    fields: { wording: "If Red is struck, it strikes back.", against: "red", response_target: "blue" },
    selects: { trigger: "ASSAULT", response: "ASSAULT" },
  });
  await shot(users.red, "act-redline");
  await red.getByRole("button", { name: "Preview" }).click();
  await red.getByRole("button", { name: "Send" }).click();
  for (const u of Object.values(users)) {
    await u.board.locator("article.commitment", { hasText: "If Red is struck" }).waitFor({ timeout: LIVE });
  }
  const m = users.mediator.page;
  await m.goto(`${users.mediator.base}/channels/${channel}/whatif`);
  await fillAct(m, { fields: { e1_actor: "blue", e1_target: "red" }, selects: { e1_action: "ASSAULT" } });
  await m.getByRole("button", { name: "Show the cascade" }).click();
  await m.locator("figure.graph svg").waitFor();
  const steps = await m.locator("pre.cascade").innerText();
  assert.match(steps, /red ASSAULT against blue/, steps);
  assert.ok((await m.locator("figure.graph svg text").count()) > 3, "the graph has its labels");
  await shot(users.mediator, "whatif");
  assert.ok(await fits640(m), "the what-if fits 640 px");
});

test("an escrowed exchange opened, both offers sealed, released to both", async () => {
  const blue = users.blue.page;
  await blue.goto(`${users.blue.base}/channels/${channel}/exchanges`);
  await blue.locator('input[name="with"][value="red"]').check();
  await blue.locator("#terms").fill("Simultaneous gestures of good faith.");
  await blue.getByRole("button", { name: "Open the exchange" }).click();
  const item = blue.locator("li.exchange", { hasText: "Simultaneous gestures" });
  await item.waitFor();
  await shot(users.blue, "exchanges");
  await item.locator("textarea").fill("Blue withdraws two brigades from the border zone.");
  await item.getByRole("button", { name: "Seal and submit" }).click();
  await blue.getByText("your offer is in").waitFor();
  const red = users.red.page;
  await red.goto(`${users.red.base}/channels/${channel}/exchanges`);
  const theirs = red.locator("li.exchange", { hasText: "Simultaneous gestures" });
  await theirs.waitFor({ timeout: LIVE });
  await theirs.locator("textarea").fill("Red releases the detained fishermen.");
  await theirs.getByRole("button", { name: "Seal and submit" }).click();
  await red.getByText("your offer is in").waitFor();
  await blue.goto(`${users.blue.base}/channels/${channel}/exchanges`);
  await blue.locator("li.exchange", { hasText: "Simultaneous gestures" }).getByRole("button", { name: "Check the status" }).click();
  await blue.locator("ul.offers", { hasText: "Red releases the detained fishermen." }).waitFor();
  await shot(users.blue, "exchange-released");
  await red.goto(`${users.red.base}/channels/${channel}/exchanges`);
  await red.locator("li.exchange", { hasText: "Simultaneous gestures" }).getByRole("button", { name: "Check the status" }).click();
  await red.locator("ul.offers", { hasText: "Blue withdraws two brigades" }).waitFor();
  // Each confirms in the channel what it opened; the other sees that its
  // own offer arrived as sealed.
  await blue.goto(`${users.blue.base}/channels/${channel}/exchanges`);
  await blue.locator("li.exchange", { hasText: "Simultaneous gestures" }).getByRole("button", { name: "Check the status" }).click();
  await blue.locator("ul.confirmations", { hasText: "confirmed receiving the offer you sealed" }).waitFor({ timeout: LIVE });
});

test("a party is not offered the mediator's finding, a forged one is refused, the mediator's is on every board", async () => {
  const blue = users.blue;
  await blue.page.goto(`${blue.base}/channels/${channel}/act`);
  await blue.page.getByRole("link", { name: "Give an assurance" }).waitFor();
  assert.equal(await blue.page.locator('a[href$="/act/find"]').count(), 0, "no finding form for a party");
  assert.equal(await blue.page.locator('a[href$="/act/convey"]').count(), 0, "no conveying for a party");
  const host = new URL(blue.base).host;
  const cookie = await cookieOf(blue);
  const form = await raw(blue, { path: `/channels/${channel}/act/find`, headers: { host, cookie } });
  assert.equal(form.status, 403, "the form itself is refused");
  const forged = await raw(blue, {
    method: "POST",
    path: `/channels/${channel}/act/find/send`,
    headers: { host, cookie, origin: blue.base, "content-type": "application/x-www-form-urlencoded" },
    body: `assurance=${blueAssurance}&breached=yes&text=forged+finding&confirm=yes`,
  });
  assert.equal(forged.status, 403, "a forged finding is refused");
  const m = users.mediator.page;
  await m.goto(`${users.mediator.base}/channels/${channel}/act`);
  await m.getByRole("link", { name: "Record a finding" }).waitFor();
  await shot(users.mediator, "acts");
  await m.goto(`${users.mediator.base}/channels/${channel}/act/find?about=${blueAssurance}`);
  await fillAct(m, { fields: { text: "No strike by either side was reported in the period." } });
  await m.getByRole("button", { name: "Preview" }).click();
  await m.getByText("cannot be withdrawn").waitFor();
  await shot(users.mediator, "act-find-preview");
  await m.locator('input[name="confirm"]').check();
  await m.getByRole("button", { name: "Send" }).click();
  for (const u of Object.values(users)) {
    await u.board.locator(`#c-${blueAssurance} .history`, { hasText: "FINDING" }).waitFor({ timeout: LIVE });
    assert.equal(await u.board.getByText("forged finding").count(), 0, `${u.name}: nothing forged arrived`);
  }
});

test("no page made a request outside 127.0.0.1", () => {
  for (const u of Object.values(users)) {
    const outside = u.requests.filter((r) => !r.startsWith(u.base + "/"));
    assert.deepEqual(outside, [], `${u.name}'s requests`);
    assert.ok(u.requests.length > 10, `${u.name} made requests`);
  }
});
