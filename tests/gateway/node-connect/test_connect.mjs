// Off-the-shelf Connect clients (connect-es: @connectrpc/connect and @connectrpc/connect-node,
// with @bufbuild/protobuf v2) against the real gateway, as a JavaScript or TypeScript caller of
// the public API would use them. No code generation: the services are read at run time from a
// FileDescriptorSet that the build makes with protoc (tests/gateway/CMakeLists.txt).
//
// Run under tests/gateway/system.py, which starts the system and exports PX_GW_URL, the
// tokens (PX_GW_TOKEN_<ROLE>), PX_GW_CAMPAIGN and PX_ACTIVATION_PID; PX_GW_DESC names the
// descriptor set (ctest sets it):
//
//   tests/gateway/system.py --build build -- node tests/gateway/node-connect/test_connect.mjs
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
if (!existsSync(join(here, "node_modules", "@connectrpc", "connect-node"))) {
  console.error(`node_modules missing: run "npm ci" in ${here} (tests/run.sh does)`);
  process.exit(1);
}
const { createFileRegistry, fromBinary } = await import("@bufbuild/protobuf");
const { FileDescriptorSetSchema, timestampFromDate } = await import("@bufbuild/protobuf/wkt");
const { Code, ConnectError, createClient } = await import("@connectrpc/connect");
const { createConnectTransport } = await import("@connectrpc/connect-node");

function need(name) {
  const v = process.env[name];
  if (!v) {
    console.error(`${name} is not set: run this under tests/gateway/system.py`);
    process.exit(1);
  }
  return v;
}

const url = need("PX_GW_URL");
const campaign = need("PX_GW_CAMPAIGN");
const tokens = { admin: need("PX_GW_TOKEN_ADMIN"), viewer: need("PX_GW_TOKEN_VIEWER") };
const desc =
  process.env.PX_GW_DESC || join(here, "..", "..", "..", "build", "tests", "gateway", "services.desc");

const registry = createFileRegistry(fromBinary(FileDescriptorSetSchema, readFileSync(desc)));
const Activation = registry.getService("phuxanh.activation.v1.ActivationService");
const Roster = registry.getService("phuxanh.roster.v1.RosterService");
assert.ok(Activation && Roster, "the services are in the descriptor set");

// A client as a caller would make one: the token goes in an interceptor.
function client(service, { binary = false, get = false, token = "admin" } = {}) {
  const interceptors = [];
  if (token) {
    interceptors.push((next) => async (req) => {
      req.header.set("Authorization", `Bearer ${tokens[token]}`);
      return next(req);
    });
  }
  const transport = createConnectTransport({
    baseUrl: url,
    httpVersion: "1.1",
    useBinaryFormat: binary,
    useHttpGet: get,
    interceptors,
  });
  return createClient(service, transport);
}

const FORMATS = [
  { name: "binary", binary: true },
  { name: "json", binary: false },
];

function newEvent(unitCode) {
  const serial = String(Math.floor(Math.random() * 1e6)).padStart(6, "0");
  return {
    idempotencyKey: `node-${Date.now()}-${Math.random().toString(16).slice(2)}`,
    campaignId: campaign,
    citizenId: `001085${serial}`,
    unitCode,
    stage: 1, // STAGE_COLLECTED
    channel: 1, // CHANNEL_OWN_PHONE
    venue: 1, // VENUE_OFFICE
    occurredAt: timestampFromDate(new Date("2023-07-29T03:00:00Z")),
    consent: true,
  };
}

async function expectCode(promise, code) {
  await assert.rejects(promise, (e) => {
    const err = ConnectError.from(e);
    assert.equal(err.code, code, `${Code[err.code]} (${err.rawMessage}), expected ${Code[code]}`);
    return true;
  });
}

test("GetProgress in binary and JSON, POST and GET, agree", async () => {
  const answers = [];
  for (const f of FORMATS) {
    for (const get of [false, true]) {
      const r = await client(Activation, { binary: f.binary, get, token: "viewer" }).getProgress({
        campaignId: campaign,
        unitCode: "725",
      });
      assert.equal(r.unit.unitCode, "725", `${f.name} get=${get}`);
      assert.equal(r.unit.unitName, "Thuận An");
      assert.equal(r.children.length, 10);
      answers.push([r.unit.collected, r.unit.activated, r.unit.target, r.children.map((c) => c.unitCode).join()]);
    }
  }
  for (const a of answers) {
    assert.deepEqual(a, answers[0]);
  }
});

test("QueryCounts in binary and JSON", async () => {
  const totals = [];
  for (const f of FORMATS) {
    const r = await client(Activation, { binary: f.binary, token: "viewer" }).queryCounts({
      campaignId: campaign,
      unitCode: "725",
      groupBy: [1, 3], // GROUP_BY_UNIT, GROUP_BY_STAGE
    });
    assert.ok(r.rows.length > 0, f.name);
    for (const row of r.rows) {
      assert.ok(row.unitCode.startsWith("25") && row.unitName && row.stage >= 1 && row.count > 0);
    }
    totals.push(r.rows.reduce((n, row) => n + row.count, 0));
  }
  assert.equal(totals[0], totals[1]);
});

test("RecordEvents as admin, then the same key again is a duplicate", async () => {
  for (const f of FORMATS) {
    const c = client(Activation, { binary: f.binary, token: "admin" });
    const e = newEvent("25966");
    const first = await c.recordEvents({ events: [e] });
    assert.equal(first.recorded, 1, `${f.name}: ${JSON.stringify(first.results)}`);
    assert.equal(first.results[0].code, 0);
    assert.equal(first.results[0].duplicate, false);
    const again = await c.recordEvents({ events: [e] });
    assert.equal(again.recorded, 0, f.name);
    assert.equal(again.duplicates, 1);
    assert.equal(again.results[0].duplicate, true);
  }
});

test("errors surface as ConnectError with their codes", async () => {
  for (const f of FORMATS) {
    await expectCode(
      client(Activation, { binary: f.binary, token: "viewer" }).forgetCitizen({
        campaignId: campaign,
        citizenId: "074205000001",
      }),
      Code.PermissionDenied,
    );
    await expectCode(
      client(Activation, { binary: f.binary, token: null }).getProgress({ campaignId: campaign, unitCode: "725" }),
      Code.Unauthenticated,
    );
    await expectCode(
      client(Activation, { binary: f.binary, token: "viewer" }).getProgress({ campaignId: "no-such", unitCode: "725" }),
      Code.NotFound,
    );
    await expectCode(
      client(Activation, { binary: f.binary, token: "viewer" }).getProgress({ campaignId: "chiến dịch", unitCode: "725" }),
      Code.InvalidArgument,
    );
  }
});

test("the roster's methods too", async () => {
  for (const f of FORMATS) {
    const c = client(Roster, { binary: f.binary, token: "viewer" });
    const units = await c.listUnits({ parentCode: "725" });
    assert.equal(units.units.length, 10, f.name);
    const camp = await c.getCampaign({ id: campaign });
    assert.equal(camp.campaign.unitCode, "725");
    const waves = await client(Roster, { binary: f.binary, get: true, token: "viewer" }).listWaves({
      campaignId: campaign,
    });
    assert.ok(waves.waves.length > 0);
  }
});

// Waits until the process is seen stopped ("T" in /proc/PID/stat), so that the call below
// cannot be answered by a process that has not stopped yet.
async function stoppedState(pid) {
  for (let i = 0; i < 100; i++) {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    if (stat.slice(stat.lastIndexOf(")") + 2).startsWith("T")) {
      return;
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.fail(`process ${pid} did not stop`);
}

test("a deadline (timeoutMs) is kept", async () => {
  const c = client(Activation, { binary: true, token: "viewer" });
  const ok = await c.queryCounts({ campaignId: campaign, unitCode: "725" }, { timeoutMs: 5000 });
  assert.ok(ok.rows.length > 0);
  // The activation service stopped: the call ends at its deadline, not later.
  const pid = Number(need("PX_ACTIVATION_PID"));
  process.kill(pid, "SIGSTOP");
  try {
    await stoppedState(pid);
    const t = Date.now();
    await expectCode(
      c.queryCounts({ campaignId: campaign, unitCode: "25972", groupBy: [2] }, { timeoutMs: 400 }).then((r) => {
        throw new Error(`answered by a stopped service: ${JSON.stringify(r.rows.slice(0, 2))}`);
      }),
      Code.DeadlineExceeded,
    );
    const took = Date.now() - t;
    assert.ok(took >= 350 && took < 3000, `took ${took} ms`);
  } finally {
    process.kill(pid, "SIGCONT");
  }
  for (let i = 0; ; i++) {
    try {
      await c.queryCounts({ campaignId: campaign, unitCode: "725" }, { timeoutMs: 2000 });
      break;
    } catch (e) {
      if (i > 50) throw e;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
});
