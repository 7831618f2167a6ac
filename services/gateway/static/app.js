// app.js - the operators' dashboard: a campaign's progress under one unit, kept live.
//
//   /?campaign=ID&unit=CODE     (defaults: the demo's campaign, province 74)
//
// What it reads, all through the gateway with the viewer's token (api.js):
// - GET /v1/progress for the root unit (its total and its children, the districts) and for
//   each district (its wards): the cards and one bar per ward;
// - QueryCounts by day and stage: today's activity, or the latest day that had any;
// - TopVolunteers: the volunteers who helped most activations;
// - the follow-up counts of the progress rows (a viewer may count people, never read them).
// Then GET /v1/events (live.js): each CountsChanged carries a unit's figures after a commit
// (the ward and each unit above it), so the unit is updated in place at once; what the event
// does not carry (open follow-ups, today's activity, the ranking) is read again, at most
// every PROGRESS_EVERY_MS / SIDE_EVERY_MS however many events arrive. "event: reset" (the
// gateway could not resume the stream) reads everything again.
//
// The DOM is built once per unit and updated in place (keyed by unit code), with
// textContent only: names come from the roster and are never parsed as HTML.

import {
  ACTIVATION,
  AuthError,
  ROSTER,
  authHeaders,
  clearToken,
  connect,
  getJSON,
  getToken,
  setToken,
} from "./api.js";
import { LiveStream } from "./live.js";

const params = new URLSearchParams(location.search);
const CAMPAIGN = params.get("campaign") || "tn-cuoi-tuan-2023";
const ROOT = params.get("unit") || "74";

// Re-reading after live events: progress (follow-ups) at most twice a second, the rest
// (activity, ranking: heavier queries) every few seconds.
const PROGRESS_EVERY_MS = 500;
const SIDE_EVERY_MS = 3000;
// After a failed load, try again after this long.
const RETRY_MS = 5000;
// Today's activity falls back to the latest active day among the last this many days (of the
// campaign, when it is over).
const ACTIVITY_DAYS = 60;
const ACTIVITY_PAGES_MAX = 5;
const RECENT_DAYS = 7;
const TOP_VOLUNTEERS = 10;
// Viet Nam is UTC+7 all year: a "day" of the API is a date there.
const VN_OFFSET_MS = 7 * 3600 * 1000;

const fmtInt = new Intl.NumberFormat("vi-VN");
const fmtPct = new Intl.NumberFormat("vi-VN", { maximumFractionDigits: 1 });
const collator = new Intl.Collator("vi");
const WEEKDAYS = ["Chủ nhật", "Thứ hai", "Thứ ba", "Thứ tư", "Thứ năm", "Thứ sáu", "Thứ bảy"];
const STAGES = [
  ["STAGE_COLLECTED", "Thu nhận hồ sơ"],
  ["STAGE_APPROVED", "Phê duyệt"],
  ["STAGE_ACTIVATED", "Kích hoạt"],
  ["STAGE_REJECTED", "Từ chối"],
];

const $ = (id) => document.getElementById(id);

// ------------------------------------------------------------------ formatting

function num(n) {
  return fmtInt.format(n || 0);
}

function pct(p) {
  if (p > 0 && p < 0.05) {
    return "<" + fmtPct.format(0.1) + "%";
  }
  return fmtPct.format(p || 0) + "%";
}

function vnDay(date) {
  return new Date(date.getTime() + VN_OFFSET_MS).toISOString().slice(0, 10);
}

function addDays(day, n) {
  return new Date(Date.parse(day + "T00:00:00Z") + n * 86400000).toISOString().slice(0, 10);
}

function dateLabel(day) {
  const [y, m, d] = day.split("-");
  return `${d}/${m}/${y}`;
}

function dayLabel(day) {
  const [y, m, d] = day.split("-").map(Number);
  return `${WEEKDAYS[new Date(Date.UTC(y, m - 1, d)).getUTCDay()]}, ${dateLabel(day)}`;
}

function clockNow() {
  return new Date().toLocaleTimeString("vi-VN", {
    timeZone: "Asia/Ho_Chi_Minh",
    hour: "2-digit",
    minute: "2-digit",
    second: "2-digit",
    hour12: false,
  });
}

// A progress row (or a CountsChanged) with proto3's omitted zeros filled in.
function normRow(r, prev) {
  const base = prev || {};
  const row = {
    unitCode: r.unitCode || base.unitCode || "",
    unitName: r.unitName || base.unitName || r.unitCode || "",
    target: r.target || 0,
    collected: r.collected || 0,
    approved: r.approved || 0,
    activated: r.activated || 0,
    rejected: r.rejected || 0,
    approvedNotActivated: r.approvedNotActivated || 0,
    // A CountsChanged does not carry the follow-ups: keep what the last read said.
    followUpsOpen: "followUpsOpen" in r || !prev ? r.followUpsOpen || 0 : base.followUpsOpen,
    green: !!r.green,
  };
  row.percent = row.target > 0 ? (row.activated / row.target) * 100 : 0;
  return row;
}

// ------------------------------------------------------------------ DOM helpers

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) {
    e.className = cls;
  }
  if (text !== undefined && text !== null) {
    e.textContent = text;
  }
  return e;
}

function checkIcon() {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 16 16");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("focusable", "false");
  svg.setAttribute("class", "icon");
  const path = document.createElementNS(ns, "path");
  path.setAttribute("d", "M3.5 8.5l3 3 6-7");
  path.setAttribute("fill", "none");
  path.setAttribute("stroke", "currentColor");
  path.setAttribute("stroke-width", "2.2");
  path.setAttribute("stroke-linecap", "round");
  path.setAttribute("stroke-linejoin", "round");
  svg.appendChild(path);
  return svg;
}

function greenBadge() {
  const b = el("span", "badge");
  b.appendChild(checkIcon());
  b.appendChild(document.createTextNode("Phủ xanh"));
  b.hidden = true;
  return b;
}

function flash(node) {
  node.classList.remove("flash");
  void node.offsetWidth; /* restart the animation */
  node.classList.add("flash");
}

function announce(text) {
  $("announce").textContent = text;
}

// A bar: activated over target, with the approved (not yet activated) behind it.
function makeBar(label) {
  const bar = el("div", "bar");
  bar.setAttribute("role", "progressbar");
  bar.setAttribute("aria-label", label);
  bar.setAttribute("aria-valuemin", "0");
  const approved = el("span", "bar-approved");
  const fill = el("span", "bar-fill");
  bar.append(approved, fill);
  return { bar, approved, fill };
}

function setBar(v, row) {
  const w = (x) => (row.target > 0 ? Math.min(100, (x / row.target) * 100) : 0);
  // A unit that has started shows a sliver, so "a little" never looks like "nothing".
  const sliver = (x) => (x > 0 ? Math.max(w(x), 1) : 0);
  v.fill.style.width = sliver(row.activated) + "%";
  v.approved.style.width = sliver(row.approved) + "%";
  v.bar.setAttribute("aria-valuemax", String(Math.max(row.target, 1)));
  v.bar.setAttribute("aria-valuenow", String(Math.min(row.activated, Math.max(row.target, 1))));
  v.bar.setAttribute(
    "aria-valuetext",
    row.target > 0
      ? `Đã kích hoạt ${num(row.activated)} trên mục tiêu ${num(row.target)} (${pct(row.percent)})`
      : `Đã kích hoạt ${num(row.activated)}; chưa có mục tiêu`);
}

// ------------------------------------------------------------------ state

const state = {
  session: 0, // bumped on logout: answers of an older session are dropped
  campaign: null,
  root: null,
  districts: new Map(), // code -> { row, wards: Map(code -> row) }, in the root's order
  parentOf: new Map(), // ward code -> district code
  views: new Map(), // unit code -> its DOM view (card or ward item)
  dirty: new Set(), // districts to read again
  live: null,
  retryTimer: null,
  sideTimer: null,
};

// ------------------------------------------------------------------ loading

async function loadCampaign(s) {
  try {
    const r = await connect(ROSTER, "GetCampaign", { id: CAMPAIGN });
    if (s === state.session) {
      state.campaign = r.campaign || null;
    }
  } catch (e) {
    if (e instanceof AuthError) {
      throw e;
    }
    /* the title is a nicety: the figures come without it */
  }
}

async function loadDistrict(code, s) {
  const r = await getJSON("/v1/progress", { campaign: CAMPAIGN, unit: code });
  if (s !== state.session) {
    return;
  }
  const d = state.districts.get(code) || { row: null, wards: new Map() };
  d.row = normRow(r.unit || {});
  d.wards = new Map();
  for (const w of r.children || []) {
    const row = normRow(w);
    d.wards.set(row.unitCode, row);
    state.parentOf.set(row.unitCode, code);
  }
  state.districts.set(code, d);
}

async function loadProgress(s, only) {
  const r = await getJSON("/v1/progress", { campaign: CAMPAIGN, unit: ROOT });
  if (s !== state.session) {
    return;
  }
  state.root = normRow(r.unit || { unitCode: ROOT });
  const codes = (r.children || []).map((c) => c.unitCode);
  const fresh = new Map();
  for (const c of r.children || []) {
    const old = state.districts.get(c.unitCode);
    fresh.set(c.unitCode, { row: normRow(c), wards: old ? old.wards : new Map() });
  }
  state.districts = fresh;
  const todo = only ? codes.filter((c) => only.has(c) || fresh.get(c).wards.size === 0) : codes;
  await Promise.all(todo.map((c) => loadDistrict(c, s)));
  if (s === state.session) {
    renderProgress();
  }
}

async function loadActivity(s) {
  // The last ACTIVITY_DAYS days up to today, or up to the campaign's last day when it is
  // over, and not before its first: a past campaign shows its own last active day.
  const today = vnDay(new Date());
  const c = state.campaign || {};
  const to = c.endsOn && c.endsOn < today ? c.endsOn : today;
  let from = addDays(to, -ACTIVITY_DAYS);
  if (c.startsOn && c.startsOn > from) {
    from = c.startsOn <= to ? c.startsOn : to;
  }
  const rows = [];
  let token = "";
  for (let page = 0; page < ACTIVITY_PAGES_MAX; page++) {
    const r = await connect(ACTIVATION, "QueryCounts", {
      campaignId: CAMPAIGN,
      unitCode: ROOT,
      groupBy: ["GROUP_BY_DAY", "GROUP_BY_STAGE"],
      fromDay: from,
      toDay: to,
      pageSize: 10000,
      pageToken: token,
    });
    rows.push(...(r.rows || []));
    token = r.nextPageToken || "";
    if (!token) {
      break;
    }
  }
  if (s === state.session) {
    renderActivity(today, rows);
  }
}

async function loadVolunteers(s) {
  const r = await connect(ACTIVATION, "TopVolunteers", {
    campaignId: CAMPAIGN,
    unitCode: ROOT,
    limit: TOP_VOLUNTEERS,
  });
  if (s === state.session) {
    renderVolunteers(r.volunteers || []);
  }
}

// The side panels fail on their own: a panel that could not be read says so and is tried
// again later, while the progress above stays live.
async function loadSide(s) {
  const [activity, volunteers] = await Promise.allSettled([loadActivity(s), loadVolunteers(s)]);
  let retry = false;
  for (const [result, show] of [[activity, activityError], [volunteers, volunteersError]]) {
    if (result.status === "rejected") {
      if (result.reason instanceof AuthError) {
        throw result.reason;
      }
      if (s === state.session) {
        show(result.reason && result.reason.message);
      }
      retry = true;
    }
  }
  if (retry && s === state.session) {
    clearTimeout(state.sideTimer);
    state.sideTimer = setTimeout(refreshSide, RETRY_MS);
  }
}

async function loadAll() {
  const s = state.session;
  clearTimeout(state.retryTimer);
  await loadCampaign(s);
  renderCampaign();
  await Promise.all([loadProgress(s), loadSide(s)]);
  if (s === state.session) {
    stamp();
    setBanner("");
  }
}

// Calls that run again and again (after events) share one error path.
function guarded(fn) {
  return async () => {
    const s = state.session;
    try {
      await fn(s);
      if (s === state.session) {
        stamp();
        setBanner("");
      }
    } catch (e) {
      failed(e, s);
    }
  };
}

// fn at most once every ms, however often asked; an ask while it runs runs it once more.
function throttled(fn, ms) {
  let timer = null;
  let last = 0;
  let running = false;
  let again = false;
  const run = async () => {
    timer = null;
    if (running) {
      again = true;
      return;
    }
    running = true;
    last = Date.now();
    try {
      await fn();
    } finally {
      running = false;
      if (again) {
        again = false;
        ask();
      }
    }
  };
  const ask = () => {
    if (!timer) {
      timer = setTimeout(run, Math.max(0, last + ms - Date.now()));
    }
  };
  ask.cancel = () => {
    clearTimeout(timer);
    timer = null;
    again = false;
  };
  return ask;
}

const refreshProgress = throttled(
  guarded(async (s) => {
    const only = new Set(state.dirty);
    state.dirty.clear();
    await loadProgress(s, only.has("*") ? null : only);
  }),
  PROGRESS_EVERY_MS);

const refreshSide = throttled(guarded(loadSide), SIDE_EVERY_MS);

function refreshEverything() {
  state.dirty.add("*");
  refreshProgress();
  refreshSide();
}

// ------------------------------------------------------------------ rendering

function renderCampaign() {
  const c = state.campaign;
  if (c && c.name) {
    $("campaign-name").textContent = c.name;
    document.title = `Phủ xanh — ${c.name}`;
  } else {
    $("campaign-name").textContent = CAMPAIGN;
  }
  if (c && c.startsOn && c.endsOn) {
    $("period").textContent = `Chiến dịch từ ${dateLabel(c.startsOn)} đến ${dateLabel(c.endsOn)}`;
  }
}

function unitCard(row, isRoot) {
  const card = el("article", "card unit-card" + (isRoot ? " root" : ""));
  card.dataset.unit = row.unitCode;
  const head = el("div", "unit-head");
  const title = el("h2", "unit-name");
  const name = el("span", "", row.unitName);
  const badge = greenBadge();
  title.append(name, badge);
  const sub = el("p", "unit-sub muted");
  head.append(title, sub);
  const pctLine = el("p", "pct-line");
  const pctValue = el("span", "pct");
  pctLine.append(pctValue, el("span", "pct-label", "mục tiêu đã kích hoạt"));
  const bar = makeBar(`Tiến độ kích hoạt của ${row.unitName}`);
  const figs = el("dl", "figs");
  const fig = (label, cls) => {
    const box = el("div", "fig " + (cls || ""));
    const dd = el("dd");
    box.append(el("dt", "", label), dd);
    figs.appendChild(box);
    return dd;
  };
  const view = {
    kind: "card",
    node: card,
    name,
    badge,
    sub,
    pctValue,
    ...bar,
    target: fig("Mục tiêu"),
    collected: fig("Đã thu nhận"),
    approved_: fig("Đã phê duyệt"),
    activated: fig("Đã kích hoạt", "fig-act"),
    isRoot,
  };
  card.append(head, pctLine, bar.bar, figs);
  return view;
}

function updateCard(v, row) {
  v.name.textContent = row.unitName;
  v.badge.hidden = !row.green;
  v.node.classList.toggle("green", row.green);
  v.node.dataset.green = String(row.green);
  v.pctValue.textContent = row.target > 0 ? pct(row.percent) : "—";
  setBar(v, row);
  v.target.textContent = row.target > 0 ? num(row.target) : "Chưa đặt";
  v.collected.textContent = num(row.collected);
  v.approved_.textContent = num(row.approved);
  v.activated.textContent = num(row.activated);
  const [greens, total] = greenCount(v.isRoot ? null : row.unitCode);
  const left = Math.max(row.target - row.activated, 0);
  const parts = [];
  if (total > 0) {
    parts.push(`${num(greens)}/${num(total)} phường, xã phủ xanh`);
  }
  if (row.target > 0) {
    parts.push(left > 0 ? `còn thiếu ${num(left)}` : "đã đạt mục tiêu");
  }
  v.sub.textContent = (v.isRoot ? "Toàn địa bàn" : "Tổng của huyện") +
    (parts.length ? " · " + parts.join(" · ") : "");
}

// [green wards, wards] under a district, or under the root when code is null.
function greenCount(code) {
  let greens = 0;
  let total = 0;
  for (const [dcode, d] of state.districts) {
    if (code && dcode !== code) {
      continue;
    }
    for (const w of d.wards.values()) {
      total++;
      greens += w.green ? 1 : 0;
    }
  }
  return [greens, total];
}

function wardItem(row) {
  const li = el("li", "ward");
  li.dataset.unit = row.unitCode;
  const top = el("div", "ward-top");
  const name = el("span", "ward-name", row.unitName);
  const badge = greenBadge();
  const pctValue = el("span", "ward-pct");
  top.append(name, badge, pctValue);
  const bar = makeBar(`Tiến độ kích hoạt của ${row.unitName}`);
  const figs = el("p", "ward-figs");
  const main = el("span", "ward-main");
  const act = el("b", "v-act");
  const target = el("span", "v-target");
  main.append(act, document.createTextNode(" / "), target,
              document.createTextNode(" đã kích hoạt"));
  const more = el("span", "ward-more muted");
  figs.append(main, more);
  li.append(top, bar.bar, figs);
  return { kind: "ward", node: li, name, badge, pctValue, ...bar, act, target, more };
}

function updateWard(v, row) {
  v.name.textContent = row.unitName;
  v.badge.hidden = !row.green;
  v.node.classList.toggle("green", row.green);
  v.node.dataset.green = String(row.green);
  v.node.dataset.activated = String(row.activated);
  v.node.dataset.target = String(row.target);
  v.pctValue.textContent = row.target > 0 ? pct(row.percent) : "—";
  setBar(v, row);
  v.act.textContent = num(row.activated);
  v.target.textContent = row.target > 0 ? num(row.target) : "chưa có mục tiêu";
  v.more.textContent = `Thu nhận ${num(row.collected)} · Phê duyệt ${num(row.approved)}`;
}

function byProgress(a, b) {
  return b.percent - a.percent || b.activated - a.activated ||
    collator.compare(a.unitName, b.unitName);
}

function view(code, make) {
  let v = state.views.get(code);
  if (!v) {
    v = make();
    state.views.set(code, v);
  }
  return v;
}

function renderCards() {
  const cards = $("cards");
  const want = [];
  if (state.root) {
    const v = view("card:" + state.root.unitCode, () => unitCard(state.root, true));
    updateCard(v, state.root);
    want.push(v.node);
  }
  for (const [code, d] of state.districts) {
    if (code === ROOT) {
      continue;
    }
    const v = view("card:" + code, () => unitCard(d.row, false));
    updateCard(v, d.row);
    want.push(v.node);
  }
  cards.replaceChildren(...want);
}

function districtSection(code, row) {
  const sec = el("section", "card district");
  sec.dataset.unit = code;
  const id = "district-" + code.replace(/[^A-Za-z0-9-]/g, "_");
  sec.setAttribute("aria-labelledby", id);
  const head = el("div", "district-head");
  const h = el("h2", "", "");
  h.id = id;
  const count = el("p", "district-count");
  head.append(h, count);
  const legend = el("p", "legend muted small");
  const key = (cls, text) => {
    const k = el("span", "key");
    k.append(el("span", "swatch " + cls), document.createTextNode(text));
    legend.appendChild(k);
  };
  key("sw-act", "Đã kích hoạt");
  key("sw-appr", "Đã phê duyệt");
  key("sw-green", "Phủ xanh (đạt mục tiêu)");
  const list = el("ol", "wards");
  list.setAttribute("aria-label", `Các phường, xã của ${row.unitName}`);
  sec.append(head, legend, list);
  return { kind: "district", node: sec, title: h, count, list };
}

function renderDistricts() {
  const box = $("districts");
  const want = [];
  for (const [code, d] of state.districts) {
    if (d.wards.size === 0) {
      continue;
    }
    const v = view("district:" + code, () => districtSection(code, d.row));
    v.title.textContent = `${d.row.unitName} — tiến độ từng phường, xã`;
    const [greens, total] = greenCount(code);
    v.count.textContent = `${num(greens)}/${num(total)} phủ xanh`;
    v.count.classList.toggle("all-green", total > 0 && greens === total);
    const items = [...d.wards.values()].sort(byProgress).map((w) => {
      const wv = view(w.unitCode, () => wardItem(w));
      updateWard(wv, w);
      return wv.node;
    });
    // Re-appending in order moves the existing items: no node is rebuilt.
    v.list.replaceChildren(...items);
    want.push(v.node);
  }
  box.replaceChildren(...want);
}

function renderFollowups() {
  const rows = [];
  for (const d of state.districts.values()) {
    for (const w of d.wards.values()) {
      if (w.followUpsOpen > 0 || w.approvedNotActivated > 0) {
        rows.push(w);
      }
    }
  }
  rows.sort((a, b) => b.followUpsOpen - a.followUpsOpen ||
    b.approvedNotActivated - a.approvedNotActivated || collator.compare(a.unitName, b.unitName));
  $("followups-total").textContent = num(state.root ? state.root.followUpsOpen : 0);
  const body = $("followup-rows");
  if (rows.length === 0) {
    const tr = el("tr");
    const td = el("td", "muted", "Không có trường hợp nào cần theo dõi.");
    td.colSpan = 3;
    tr.appendChild(td);
    body.replaceChildren(tr);
    return;
  }
  body.replaceChildren(...rows.map((w) => {
    const tr = el("tr");
    tr.dataset.unit = w.unitCode;
    const th = el("th", "", w.unitName);
    th.scope = "row";
    tr.append(th, el("td", "num", num(w.followUpsOpen)),
              el("td", "num", num(w.approvedNotActivated)));
    return tr;
  }));
}

function renderProgress() {
  renderCards();
  renderDistricts();
  renderFollowups();
}

function renderActivity(today, rows) {
  const days = [...new Set(rows.map((r) => r.day).filter(Boolean))].sort();
  const dayNote = $("activity-day");
  const box = $("activity-stats");
  let day = today;
  if (days.includes(today)) {
    dayNote.textContent = dayLabel(today);
  } else if (days.length > 0) {
    day = days[days.length - 1];
    dayNote.textContent = `Hôm nay (${dateLabel(today)}) chưa có hoạt động. ` +
      `Số liệu của ngày gần nhất có hoạt động: ${dayLabel(day)}.`;
  } else {
    dayNote.textContent = `Hôm nay (${dateLabel(today)}) chưa có hoạt động nào được ghi nhận.`;
  }
  $("activity").dataset.day = day;
  const counts = new Map();
  for (const r of rows) {
    if (r.day === day) {
      counts.set(r.stage, (counts.get(r.stage) || 0) + (r.count || 0));
    }
  }
  box.replaceChildren(...STAGES.map(([stage, label]) => {
    const item = el("div", "stat stat-" + stage.slice(6).toLowerCase());
    item.append(el("dt", "", label), el("dd", "", num(counts.get(stage) || 0)));
    return item;
  }));
  renderRecentDays(days.slice(-RECENT_DAYS).reverse(), rows);
}

// The latest active days' activations, as small bars against the best of them.
function renderRecentDays(days, rows) {
  const activated = new Map();
  for (const r of rows) {
    if (r.stage === "STAGE_ACTIVATED") {
      activated.set(r.day, (activated.get(r.day) || 0) + (r.count || 0));
    }
  }
  const best = Math.max(1, ...days.map((d) => activated.get(d) || 0));
  $("recent").hidden = days.length === 0;
  $("recent-days").replaceChildren(...days.map((d) => {
    const n = activated.get(d) || 0;
    const li = el("li", "day");
    const [, m, dd] = d.split("-");
    const [y, mo, da] = d.split("-").map(Number);
    const wd = WEEKDAYS[new Date(Date.UTC(y, mo - 1, da)).getUTCDay()];
    const label = el("span", "day-label", `${wd}, ${dd}/${m}`);
    const track = el("span", "day-track");
    const fill = el("span", "day-fill");
    fill.style.width = (n > 0 ? Math.max((n / best) * 100, 2) : 0) + "%";
    track.appendChild(fill);
    li.append(label, track, el("span", "day-value", num(n)));
    return li;
  }));
}

function activityError(why) {
  $("activity-day").textContent = `Không tải được hoạt động trong ngày (${why || "lỗi"}).`;
  $("activity-stats").replaceChildren();
}

function volunteersError(why) {
  $("volunteer-list").replaceChildren(
    el("li", "muted empty", `Không tải được danh sách (${why || "lỗi"}).`));
}

function renderVolunteers(list) {
  const ol = $("volunteer-list");
  if (list.length === 0) {
    ol.replaceChildren(el("li", "muted empty", "Chưa có số liệu."));
    return;
  }
  ol.replaceChildren(...list.map((v, i) => {
    const li = el("li", "person");
    li.append(el("span", "rank", String(i + 1)));
    const who = el("span", "who");
    who.append(el("span", "who-name", v.fullName || v.volunteerCode),
               el("span", "who-code muted", v.volunteerCode));
    const figs = el("span", "person-figs");
    figs.append(el("b", "", num(v.activated)), el("span", "muted", " kích hoạt"));
    const sub = el("span", "person-sub muted", `${num(v.collected)} thu nhận`);
    const right = el("span", "person-right");
    right.append(figs, sub);
    li.append(who, right);
    return li;
  }));
}

function stamp() {
  $("updated").textContent = `Cập nhật lúc ${clockNow()} · Chiến dịch ${CAMPAIGN}`;
}

function setBanner(text) {
  const b = $("banner");
  b.textContent = text;
  b.hidden = !text;
}

// ------------------------------------------------------------------ live updates

function onCounts(data) {
  let ev;
  try {
    ev = JSON.parse(data);
  } catch {
    return;
  }
  if (ev.campaignId && ev.campaignId !== CAMPAIGN) {
    return;
  }
  const code = ev.unitCode;
  if (state.root && code === state.root.unitCode) {
    state.root = normRow(ev, state.root);
    const v = state.views.get("card:" + code);
    if (v) {
      updateCard(v, state.root);
      flash(v.node);
    }
  } else if (state.districts.has(code)) {
    const d = state.districts.get(code);
    d.row = normRow(ev, d.row);
    state.dirty.add(code);
    const v = state.views.get("card:" + code);
    if (v) {
      updateCard(v, d.row);
      flash(v.node);
    }
  } else if (state.parentOf.has(code)) {
    const dcode = state.parentOf.get(code);
    const d = state.districts.get(dcode);
    const old = d && d.wards.get(code);
    if (old) {
      const row = normRow(ev, old);
      d.wards.set(code, row);
      if (row.green && !old.green) {
        announce(`${row.unitName} đã phủ xanh: ${num(row.activated)} trên mục tiêu ` +
                 `${num(row.target)}.`);
      }
      renderDistricts();
      const v = state.views.get(code);
      if (v) {
        flash(v.node);
      }
      for (const k of ["card:" + dcode, state.root ? "card:" + state.root.unitCode : ""]) {
        const cv = state.views.get(k);
        if (cv) {
          updateCard(cv, k === "card:" + dcode ? d.row : state.root);
        }
      }
    }
    state.dirty.add(dcode);
  } else {
    state.dirty.add("*"); /* a unit this page has not seen: read the tree again */
  }
  refreshProgress();
  refreshSide();
}

function setLive(stateName) {
  const live = $("live");
  live.dataset.state = stateName;
  $("live-text").textContent = {
    off: "Chưa kết nối",
    connecting: "Đang kết nối…",
    open: "Trực tiếp",
    retrying: "Mất kết nối, đang thử lại…",
  }[stateName];
  live.title = stateName === "open" ? "Số liệu tự cập nhật khi có thay đổi" : "";
}

function startLive() {
  const q = new URLSearchParams({ campaign: CAMPAIGN, unit: ROOT }).toString();
  state.live = new LiveStream("/v1/events?" + q, authHeaders, {
    onEvent: (e) => {
      if (e.type === "counts") {
        onCounts(e.data);
      } else if (e.type === "reset") {
        refreshEverything();
      }
    },
    onState: (name, resumed) => {
      setLive(name);
      if (name === "open" && !resumed) {
        // What changed between the first read and this subscription is not on the stream.
        refreshEverything();
      }
    },
    onUnauthorized: (status) => showLogin(status),
  });
  state.live.start();
}

// ------------------------------------------------------------------ token and start

function failed(e, s) {
  if (s !== state.session) {
    return;
  }
  if (e instanceof AuthError) {
    showLogin(e.status);
    return;
  }
  const why = e && e.code === "not_found" ? `không tìm thấy: ${e.message}` :
    (e && e.message) || "lỗi không rõ";
  setBanner(`Không tải được số liệu (${why}). Sẽ thử lại sau ${RETRY_MS / 1000} giây.`);
  clearTimeout(state.retryTimer);
  state.retryTimer = setTimeout(() => start(), RETRY_MS);
}

function stopAll() {
  state.session++;
  clearTimeout(state.retryTimer);
  clearTimeout(state.sideTimer);
  refreshProgress.cancel();
  refreshSide.cancel();
  if (state.live) {
    state.live.stop();
    state.live = null;
  }
  setLive("off");
}

function showLogin(status) {
  stopAll();
  clearToken();
  $("board").hidden = true;
  $("logout").hidden = true;
  $("login").hidden = false;
  const err = $("login-error");
  if (status === 401) {
    err.textContent = "Mã truy cập không đúng hoặc đã hết hiệu lực. Vui lòng nhập lại.";
  } else if (status === 403) {
    err.textContent = "Mã truy cập này không được phép xem số liệu của chiến dịch.";
  } else {
    err.textContent = "";
  }
  err.hidden = !err.textContent;
  $("updated").textContent = "Chưa đăng nhập";
  const input = $("token");
  input.value = "";
  input.focus();
}

async function start() {
  const s = state.session;
  $("login").hidden = true;
  $("board").hidden = false;
  $("logout").hidden = false;
  try {
    await loadAll();
    if (s === state.session && !state.live) {
      startLive();
    }
  } catch (e) {
    failed(e, s);
  }
}

function init() {
  $("login-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const token = $("token").value.trim();
    if (!token) {
      return;
    }
    setToken(token);
    $("token").value = "";
    stopAll();
    start();
  });
  $("logout").addEventListener("click", () => showLogin(0));
  if (getToken()) {
    start();
  } else {
    showLogin(0);
  }
}

init();
