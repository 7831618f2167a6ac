// test_dashboard.mjs - the operators' dashboard in a real headless Chromium against the real
// system (px-roster, px-activation, px-gateway with the Thuận An demo loaded).
//
// Run under tests/gateway/system.py, which starts the system and exports PX_GW_URL,
// PX_GW_TOKEN_VIEWER, PX_GW_TOKEN_ADMIN and PX_GW_CAMPAIGN:
//
//   tests/gateway/system.py --build build -- node tests/gateway/dashboard/test_dashboard.mjs
//
// The browser is Debian's chromium (/usr/bin/chromium, deploy/lib/packages.sh), driven by
// playwright-core, which downloads no browser of its own. Each launch gets a fresh profile
// (playwright makes a temporary user-data-dir and removes it on close).
//
// The cases run in order on one page, as an operator would use it: the page asks for a
// token, refuses a wrong one, shows the demo's figures as /v1/progress gives them, and when
// the test (as an admin) brings a ward to its target through the gateway, that ward's bar
// turns green with no reload. Screenshots go to $PX_TEST_ARTIFACTS (default
// <build>/test-artifacts) and their paths are printed. Then a phone-sized page must fit its
// width. Every case can fail; the run ends with "N passed, N failed".

import { randomBytes, randomInt } from "node:crypto";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

import { chromium } from "playwright-core";

import { SseParser } from "../../../services/gateway/static/live.js";

const GW = need("PX_GW_URL");
const VIEWER = need("PX_GW_TOKEN_VIEWER");
const ADMIN = need("PX_GW_TOKEN_ADMIN");
const CAMPAIGN = process.env.PX_GW_CAMPAIGN || "tn-cuoi-tuan-2023";
const PROVINCE = "74";
const DISTRICT = "725"; // Thuận An: the demo's ten wards
const WARD = "25972"; // Thuận Giao: the ward the test brings to its target
const ARTIFACTS = process.env.PX_TEST_ARTIFACTS ||
  join(process.env.PX_BUILD_DIR || process.cwd(), "test-artifacts");
const CHROMIUM = process.env.PX_CHROMIUM || "/usr/bin/chromium";
// The bound for a live change to show, and a page's first load.
const LIVE_MS = 5000;
const LOAD_MS = 15000;
const GREEN_RGB = "rgb(25, 135, 84)"; // app.css --green

function need(name) {
  const v = process.env[name];
  if (!v) {
    console.error(`${name} is not set: run under tests/gateway/system.py`);
    process.exit(2);
  }
  return v;
}

function check(cond, what) {
  if (!cond) {
    throw new Error(what);
  }
}

// vi-VN grouping, written out here rather than asked of Intl: the page's formatting is
// what is under test.
function vi(n) {
  return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ".");
}

async function gw(method, path, token, body) {
  const res = await fetch(GW + path, {
    method,
    headers: Object.assign({ Authorization: "Bearer " + token },
                           body ? { "Content-Type": "application/json" } : {}),
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  check(res.ok, `${method} ${path}: HTTP ${res.status} ${text.slice(0, 200)}`);
  return JSON.parse(text);
}

const progress = (unit) =>
  gw("GET", `/v1/progress?campaign=${CAMPAIGN}&unit=${unit}`, VIEWER);
const activation = (method, body, token) =>
  gw("POST", "/phuxanh.activation.v1.ActivationService/" + method, token || VIEWER, body);

// ---------------------------------------------------------------------------- the browser

const ctx = {
  browser: null,
  context: null,
  page: null,
  navigations: 0,
  pageErrors: [],
};

async function launch() {
  ctx.browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

async function newPage(viewport) {
  const context = await ctx.browser.newContext({ viewport, locale: "vi-VN" });
  // Anything the page's Content-Security-Policy blocks would be a broken dashboard (an
  // inline style or script): collect the violations where the page cannot hide them.
  await context.addInitScript(() => {
    window.__cspViolations = [];
    document.addEventListener("securitypolicyviolation", (e) => {
      window.__cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`);
    });
  });
  const page = await context.newPage();
  page.on("pageerror", (e) => ctx.pageErrors.push(e.message));
  page.on("framenavigated", (f) => {
    if (f === page.mainFrame()) {
      ctx.navigations++;
    }
  });
  return { context, page };
}

async function shot(page, name) {
  mkdirSync(ARTIFACTS, { recursive: true });
  const path = join(ARTIFACTS, name);
  await page.screenshot({ path, fullPage: true });
  console.log(`screenshot: ${path}`);
  return path;
}

async function login(page, token) {
  await page.locator("#token").fill(token);
  await page.locator("#login-form button[type=submit]").click();
}

// ---------------------------------------------------------------------------- the cases

async function caseAsksForToken() {
  const { context, page } = await newPage({ width: 1280, height: 900 });
  ctx.context = context;
  ctx.page = page;
  await page.goto(GW + "/");
  await page.locator("#token").waitFor({ state: "visible", timeout: LOAD_MS });
  check(await page.locator("#board").isHidden(), "the figures show before a token is given");
  const title = await page.locator("#login-title").textContent();
  check(title.includes("Đăng nhập"), `login title: ${title}`);
  check((await page.locator("html").getAttribute("lang")) === "vi", "page language is not vi");
}

async function caseWrongTokenAsksAgain() {
  const page = ctx.page;
  await login(page, "not-a-token-" + randomBytes(8).toString("hex"));
  const err = page.locator("#login-error");
  await err.waitFor({ state: "visible", timeout: LOAD_MS });
  const text = await err.textContent();
  check(text.includes("Mã truy cập không đúng"), `error message: ${text}`);
  check(await page.locator("#token").isVisible(), "the token form is not shown again");
  check(await page.locator("#board").isHidden(), "the board shows with a wrong token");
  const kept = await page.evaluate(() => Object.keys(sessionStorage).length);
  check(kept === 0, "a refused token was kept in sessionStorage");
}

async function caseViewerSeesTheWards() {
  const page = ctx.page;
  await login(page, VIEWER);
  const wards = page.locator(`section.district[data-unit="${DISTRICT}"] li.ward`);
  await wards.nth(9).waitFor({ timeout: LOAD_MS });
  check((await wards.count()) === 10, `wards shown: ${await wards.count()}`);
  check(await page.locator("#login").isHidden(), "the token form is still shown");

  const [prov, dist] = await Promise.all([progress(PROVINCE), progress(DISTRICT)]);
  const card = page.locator(`#cards [data-unit="${PROVINCE}"]`);
  const cardText = await card.textContent();
  for (const n of [prov.unit.target, prov.unit.collected, prov.unit.approved,
                   prov.unit.activated]) {
    check(cardText.includes(vi(n)), `province card lacks ${vi(n)}: ${cardText}`);
  }
  check(cardText.includes(prov.unit.unitName), "province card lacks its name");
  check(dist.children.length === 10, `/v1/progress lists ${dist.children.length} wards`);
  for (const w of dist.children) {
    const li = page.locator(`li.ward[data-unit="${w.unitCode}"]`);
    const name = await li.locator(".ward-name").textContent();
    check(name === w.unitName, `ward ${w.unitCode}: name "${name}", expected "${w.unitName}"`);
    const text = await li.textContent();
    const act = w.activated || 0;
    check(text.includes(`${vi(act)} / ${vi(w.target)}`),
          `ward ${w.unitName}: "${text}" lacks ${vi(act)} / ${vi(w.target)}`);
    check((await li.getAttribute("data-green")) === String(!!w.green),
          `ward ${w.unitName}: green ${await li.getAttribute("data-green")}`);
  }
  // The demo's names, with their diacritics, as the page shows them.
  const names = await page.locator("li.ward .ward-name").allTextContents();
  for (const n of ["Lái Thiêu", "Thuận Giao", "Bình Chuẩn", "Hưng Định", "Vĩnh Phú"]) {
    check(names.includes(n), `ward ${n} not shown (${names.join(", ")})`);
  }
}

async function caseTokenKeptForTheSession() {
  const page = ctx.page;
  const stored = await page.evaluate(() => Object.values(sessionStorage));
  check(stored.includes(VIEWER), "the token is not in sessionStorage");
  const local = await page.evaluate(() => localStorage.length);
  check(local === 0, "something was written to localStorage");
  await page.reload();
  await page.locator("li.ward").nth(9).waitFor({ timeout: LOAD_MS });
  check(await page.locator("#login").isHidden(), "the token was asked for again after a reload");
  await page.locator('#live[data-state="open"]').waitFor({ timeout: LOAD_MS });
  const live = await page.locator("#live-text").textContent();
  check(live === "Trực tiếp", `live indicator says "${live}"`);
}

async function caseSidePanels() {
  const page = ctx.page;
  const prov = await progress(PROVINCE);
  await page.locator("#volunteer-list li.person").first().waitFor({ timeout: LOAD_MS });
  const total = await page.locator("#followups-total").textContent();
  check(total === vi(prov.unit.followUpsOpen || 0),
        `follow-ups ${total}, expected ${vi(prov.unit.followUpsOpen || 0)}`);

  const top = await activation("TopVolunteers",
                               { campaignId: CAMPAIGN, unitCode: PROVINCE, limit: 10 });
  const shown = await page.locator("#volunteer-list .who-name").allTextContents();
  check(shown.length === top.volunteers.length, `volunteers shown ${shown.length}`);
  check(shown[0] === (top.volunteers[0].fullName || top.volunteers[0].volunteerCode),
        `first volunteer ${shown[0]}`);

  // The demo's events are of 2023: the page falls back to the last day that had any, says
  // so, and its figures are that day's.
  const day = await page.locator("#activity").getAttribute("data-day");
  check(/^\d{4}-\d{2}-\d{2}$/.test(day || ""), `activity day ${day}`);
  const counts = await activation("QueryCounts", {
    campaignId: CAMPAIGN, unitCode: PROVINCE, groupBy: ["GROUP_BY_STAGE"],
    fromDay: day, toDay: day,
  });
  const act = (counts.rows || []).find((r) => r.stage === "STAGE_ACTIVATED");
  const shownAct = await page.locator("#activity .stat-activated dd").textContent();
  check(shownAct === vi(act ? act.count : 0), `activated that day ${shownAct}`);
  const note = await page.locator("#activity-day").textContent();
  const [y, m, d] = day.split("-");
  check(note.includes(`${d}/${m}/${y}`), `the day is not named: ${note}`);
}

async function caseWardTurnsGreenLive() {
  const page = ctx.page;
  const li = page.locator(`li.ward[data-unit="${WARD}"]`);
  const before = (await progress(DISTRICT)).children.find((w) => w.unitCode === WARD);
  const activated = before.activated || 0;
  check(!before.green, "the ward is green before the test");
  await page.evaluate(() => {
    window.__sameDocument = true;
  });
  const navigationsBefore = ctx.navigations;

  // A target one above what is activated: not green yet, and the page shows the new target.
  const set = await activation("SetTargets", {
    targets: [{ campaignId: CAMPAIGN, unitCode: WARD, target: activated + 1 }],
  }, ADMIN);
  check(set.committed, `SetTargets: ${JSON.stringify(set)}`);
  await page.locator(`li.ward[data-unit="${WARD}"][data-target="${activated + 1}"]`)
    .waitFor({ timeout: LIVE_MS });
  check((await li.getAttribute("data-green")) === "false", "green before the target was met");

  // One more activation in that ward, recorded through the gateway: the ward reaches its
  // target. A synthetic but valid CCCD: Hà Nội (001), a woman born in 1990 (century digit 1),
  // never one of the demo's (all born in Bình Dương, 074).
  const citizen = "001190" + String(randomInt(0, 1000000)).padStart(6, "0");
  const rec = await activation("RecordEvents", {
    events: [{
      idempotencyKey: "dashboard-test-" + randomBytes(8).toString("hex"),
      campaignId: CAMPAIGN,
      citizenId: citizen,
      unitCode: WARD,
      stage: "STAGE_ACTIVATED",
      channel: "CHANNEL_OWN_PHONE",
      venue: "VENUE_OFFICE",
      occurredAt: "2023-07-30T12:00:00Z", // Sunday 19:00 in Viet Nam, the demo's last day
      consent: true,
    }],
  }, ADMIN);
  check(rec.recorded === 1, `RecordEvents: ${JSON.stringify(rec)}`);

  const t0 = Date.now();
  await page.locator(`li.ward[data-unit="${WARD}"][data-green="true"]`)
    .waitFor({ timeout: LIVE_MS });
  console.log(`the ward turned green ${Date.now() - t0} ms after RecordEvents answered`);
  check(await li.locator(".badge").isVisible(), "no Phủ xanh mark on the ward");
  check((await li.textContent()).includes(`${vi(activated + 1)} / ${vi(activated + 1)}`),
        `ward figures: ${await li.textContent()}`);
  const fill = await li.locator(".bar-fill").evaluate((e) => getComputedStyle(e).backgroundColor);
  check(fill === GREEN_RGB, `the bar is ${fill}, not green`);
  const count = page.locator(`section.district[data-unit="${DISTRICT}"] .district-count`);
  await page.waitForFunction(
    (el) => el && el.textContent.startsWith("1/10"),
    await count.elementHandle(), { timeout: LIVE_MS });

  // The day's activity is read again after the change too (at most every few seconds): the
  // event is on the demo's last day, the one the page shows.
  const day = await page.locator("#activity").getAttribute("data-day");
  const counts = await activation("QueryCounts", {
    campaignId: CAMPAIGN, unitCode: PROVINCE, groupBy: ["GROUP_BY_STAGE"],
    fromDay: day, toDay: day, stages: ["STAGE_ACTIVATED"],
  });
  const want = vi((counts.rows || []).reduce((n, r) => n + (r.count || 0), 0));
  await page.waitForFunction(
    (w) => document.querySelector("#activity .stat-activated dd").textContent === w,
    want, { timeout: 2 * LIVE_MS });

  check(ctx.navigations === navigationsBefore, "the page navigated (reloaded)");
  check(await page.evaluate(() => window.__sameDocument === true), "the document was replaced");
  // Let the bar's transition and the highlight of the changed units end before the picture.
  await page.waitForTimeout(2000);
  await shot(page, "dashboard.png");
}

async function casePhoneFitsItsWidth() {
  const { context, page } = await newPage({ width: 390, height: 844 });
  try {
    await page.goto(GW + "/");
    await login(page, VIEWER);
    await page.locator("li.ward").nth(9).waitFor({ timeout: LOAD_MS });
    await page.locator("#volunteer-list li.person").first().waitFor({ timeout: LOAD_MS });
    const [scrollW, clientW] = await page.evaluate(
      () => [document.documentElement.scrollWidth, document.documentElement.clientWidth]);
    check(scrollW <= clientW, `the page scrolls sideways: ${scrollW} > ${clientW}`);
    const wide = await page.evaluate(() => [...document.querySelectorAll("body *")]
      .filter((e) => e.getClientRects().length && e.getBoundingClientRect().right > 390.5)
      .map((e) => e.tagName + "." + e.className).slice(0, 5));
    check(wide.length === 0, `elements past the right edge: ${wide.join(", ")}`);
    const size = await page.locator("li.ward .ward-name").first()
      .evaluate((e) => parseFloat(getComputedStyle(e).fontSize));
    check(size >= 14, `ward names in ${size}px on a phone`);
    await shot(page, "dashboard-phone.png");
  } finally {
    await context.close();
  }
}

async function caseNothingBlockedNoErrors() {
  const violations = await ctx.page.evaluate(() => window.__cspViolations);
  check(violations.length === 0, `CSP blocked: ${violations.join("; ")}`);
  check(ctx.pageErrors.length === 0, `page errors: ${ctx.pageErrors.join("; ")}`);
}

// The page's event-stream parser on its own (in node: it touches no DOM), on what a network
// may do to the gateway's stream: chunks split anywhere, CRLF split between two chunks,
// comments, multi-line data, a stray NUL, an event with no data.
async function caseSseParserEdges() {
  const got = [];
  const comments = [];
  let retry = 0;
  const p = new SseParser({
    onEvent: (e) => got.push(e),
    onComment: (c) => comments.push(c),
    onRetry: (ms) => {
      retry = ms;
    },
  });
  const stream = "retry: 3000\n: connected\n\n\0id: b-1\nevent: counts\ndata: {\"a\":1}\n\n" +
    "id: b-2\r\nevent: reset\r\ndata: line1\r\ndata:line2\r\n\r\n" +
    ": keep-alive\r\rid: b-3\revent: counts\rdata: {}\r\r" +
    "event: empty\n\n" + "data: x\nid";
  for (let i = 0; i < stream.length; i += 3) {
    p.feed(stream.slice(i, i + 3)); /* 3 characters at a time: every split happens */
  }
  check(retry === 3000, `retry ${retry}`);
  check(comments.join("|") === "connected|keep-alive", `comments ${comments.join("|")}`);
  const want = [
    { type: "counts", data: '{"a":1}', id: "b-1" },
    { type: "reset", data: "line1\nline2", id: "b-2" },
    { type: "counts", data: "{}", id: "b-3" },
  ];
  check(JSON.stringify(got) === JSON.stringify(want), `events ${JSON.stringify(got)}`);
  p.feed("\n\n"); /* the unfinished event: "id" alone sets an empty id */
  check(got.length === 4 && got[3].data === "x" && got[3].id === "", JSON.stringify(got[3]));
}

const CASES = [
  ["sse_parser_edges", caseSseParserEdges],
  ["asks_for_token", caseAsksForToken],
  ["wrong_token_asks_again", caseWrongTokenAsksAgain],
  ["viewer_sees_the_wards", caseViewerSeesTheWards],
  ["token_kept_for_the_session", caseTokenKeptForTheSession],
  ["side_panels", caseSidePanels],
  ["ward_turns_green_live", caseWardTurnsGreenLive],
  ["phone_fits_its_width", casePhoneFitsItsWidth],
  ["nothing_blocked_no_errors", caseNothingBlockedNoErrors],
];

async function main() {
  const only = process.argv[2];
  let passed = 0;
  let failed = 0;
  try {
    await launch();
    for (const [name, fn] of CASES) {
      if (only && name !== only) {
        continue;
      }
      try {
        await fn();
        passed++;
        console.log(`ok   ${name}`);
      } catch (e) {
        failed++;
        console.log(`FAIL ${name}: ${e && e.message ? e.message.split("\n")[0] : e}`);
        if (ctx.page && !ctx.page.isClosed()) {
          await shot(ctx.page, `dashboard-fail-${name}.png`).catch(() => {});
        }
      }
    }
  } catch (e) {
    failed++;
    console.log(`FAIL setup: ${e && e.message ? e.message.split("\n")[0] : e}`);
  } finally {
    if (ctx.browser) {
      await ctx.browser.close();
    }
  }
  console.log(`${passed} passed, ${failed} failed`);
  process.exitCode = failed || passed === 0 ? 1 : 0;
}

await main();
