// The review UI in real headless Chromium: log in, see the queue, open a case with the keyboard,
// toggle layers, zoom, record a decision (refused without a note, then with one), see it in
// the audit view, see a new case arrive live, and check that an officer of another bay gets
// 403, after checking the fleet page shows the bay agents (a silent one in red). Screenshots go to $SCREENSHOT_DIR. Driven by tests/tests/browser.rs, which starts the
// server, the agent and the data; run it through `./baylens test`.
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";

const base = process.env.BASE_URL;
const caseId = process.env.CASE_ID;
const password = process.env.PASSWORD;
const shots = process.env.SCREENSHOT_DIR ?? "screenshots";
const agentToken = process.env.AGENT_TOKEN;
mkdirSync(shots, { recursive: true });

let step = "start";
let page;
const check = (cond, message) => { if (!cond) throw new Error(`${step}: ${message}`); };

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-dev-shm-usage"],
});
try {
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  // Refused requests (401, 403, 422) are part of the script; only script errors count.
  page.on("console", (m) => { if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) errors.push(m.text()); });

  step = "log in";
  await page.goto(`${base}/queue`);
  check(page.url().endsWith("/login"), `anonymous visit should land on /login, got ${page.url()}`);
  await page.fill('input[name="username"]', "sup");
  await page.fill('input[name="password"]', "wrong password");
  await page.click('button[type="submit"]');
  check((await page.textContent('[role="alert"]')).includes("Wrong user name or password"), "wrong password message");
  await page.fill('input[name="username"]', "sup");
  await page.fill('input[name="password"]', password);
  await page.click('button[type="submit"]');
  await page.waitForURL(`${base}/queue`);

  step = "see the queue";
  const row = page.locator(`#queue tr[data-href="/cases/${caseId}"]`);
  await row.waitFor();
  check((await row.textContent()).includes("red") || (await row.textContent()).includes("yellow"), "flagged case shows its lane");
  await page.screenshot({ path: `${shots}/01-queue.png`, fullPage: true });

  step = "new cases appear live";
  const before = await page.locator("#queue tbody tr").count();
  const now = new Date().toISOString();
  const report = {
    contract: "baylens.report/1", report_id: "live-1", scan_id: "BAY01-live-1", bay: "BAY01",
    captured_at: now, analysed_at: now, container_code: "MSKU9070323", width: 416, height: 208,
    model: { name: "concealment-v1", sha256: "ab", max_probability: 0.99, flagged_fraction: 0.02, inference_ms: 20 },
    findings: [{ kind: "concealed_object", score: 0.99, region: { x: 100, y: 50, width: 40, height: 30 }, message: "dense block" }],
    risk: 0.99, lane: "red",
  };
  const posted = await fetch(`${base}/api/v1/reports`, {
    method: "POST", headers: { "Content-Type": "application/json", Authorization: `Bearer ${agentToken}` },
    body: JSON.stringify(report),
  });
  check(posted.status === 201, `report POST got ${posted.status}`);
  await page.locator("#queue tbody tr.new").waitFor({ timeout: 10000 });
  check((await page.locator("#queue tbody tr").count()) === before + 1, "one new row without reload");
  check((await page.locator("#queue tbody tr.new").textContent()).includes("MSKU9070323"), "the new case's row");
  const risks = await page.locator("#queue tbody tr").evaluateAll((rs) => rs.map((r) => Number(r.dataset.risk)));
  check(risks.every((r, i) => i === 0 || risks[i - 1] >= r), `still ranked by risk: ${risks}`);
  await page.screenshot({ path: `${shots}/02-queue-live.png`, fullPage: true });

  step = "open the case with the keyboard";
  const rows = await page.locator("#queue tbody tr").evaluateAll((rs) => rs.map((r) => r.dataset.href));
  const index = rows.indexOf(`/cases/${caseId}`);
  check(index >= 0, "case row present");
  for (let i = 0; i <= index; i++) await page.keyboard.press("j");
  await page.keyboard.press("Enter");
  await page.waitForURL(`${base}/cases/${caseId}`);
  await page.waitForFunction(() => {
    const img = document.querySelector("img#layer-scan");
    return img && img.complete && img.naturalWidth > 0;
  });
  check((await page.textContent("h1")).includes(`Case #${caseId}`), "case heading");
  check((await page.textContent(".findings")).includes("score"), "findings explained");
  check((await page.textContent("table.items")).includes("Cotton"), "declaration table beside the scan");
  await page.screenshot({ path: `${shots}/03-case.png`, fullPage: true });
  const tdrHref = await page.getAttribute("#tdr-link", "href");
  const tdr = await page.request.get(`${base}${tdrHref}`);
  check(tdr.status() === 200 && tdr.headers()["content-type"] === "application/dicom", `TDR download: ${tdr.status()}`);
  check((await tdr.body()).subarray(128, 132).toString() === "DICM", "the TDR is a DICOM file");

  step = "toggle layers";
  await page.waitForFunction(() => {
    const img = document.querySelector("img#layer-img-heat");
    return img && img.complete && img.naturalWidth > 0;
  });
  check(await page.isVisible("#layer-img-heat"), "the bay's heat map shown by default");
  await page.uncheck('input[data-layer="layer-img-heat"]');
  check(await page.isHidden("#layer-img-heat"), "heat map hidden after toggle");
  await page.check('input[data-layer="layer-img-heat"]');
  check(await page.isVisible("#layer-findings"), "finding boxes shown by default");
  check(await page.isHidden("#layer-expected"), "expected cargo hidden by default");
  await page.uncheck('input[data-layer="layer-findings"]');
  check(await page.isHidden("#layer-findings"), "finding boxes hidden after toggle");
  await page.check('input[data-layer="layer-expected"]');
  check(await page.isVisible("#layer-expected"), "expected cargo shown after toggle");
  const t0 = await page.$eval("#stage", (s) => s.style.transform);
  await page.click('button[data-zoom="in"]');
  const t1 = await page.$eval("#stage", (s) => s.style.transform);
  check(t0 !== t1, `zoom changes the transform (${t0} -> ${t1})`);
  await page.screenshot({ path: `${shots}/04-layers.png`, fullPage: true });

  step = "a decision needs a note";
  await page.selectOption('#decision-form select[name="decision"]', "physical_examination");
  await page.click('#decision-form button[type="submit"]');
  await page.waitForFunction(() => document.querySelector("#decision-form .form-error").textContent.length > 0);
  check((await page.textContent("#decision-form .form-error")).includes("needs a note"), "note required");
  await page.fill('#decision-form textarea[name="note"]', "Dense block behind the textiles; open at bay 1");
  await Promise.all([page.waitForEvent("load"), page.click('#decision-form button[type="submit"]')]);
  check((await page.textContent("#history")).includes("Dense block behind the textiles"), "decision in history");
  check((await page.textContent("h1")).includes("physical examination"), "status updated");
  await page.screenshot({ path: `${shots}/05-decision.png`, fullPage: true });

  step = "see it in the audit view";
  await page.click(`a[href="/audit?subject=case:${caseId}"]`);
  await page.waitForURL(/\/audit/);
  const audit = await page.textContent("#audit");
  check(audit.includes("case.decision") && audit.includes("physical_examination"), "decision audited");
  check((await page.textContent("#chain")).includes("Chain intact"), "chain verified");
  await page.screenshot({ path: `${shots}/06-audit.png`, fullPage: true });

  step = "release-time dashboard";
  await page.click('a[href="/dashboard"]');
  await page.waitForURL(/\/dashboard/);
  check((await page.textContent("#release")).includes("BAY01"), "bay row in the dashboard");
  await page.screenshot({ path: `${shots}/07-release-times.png`, fullPage: true });

  step = "outcomes panel";
  const outcomes = await page.textContent("#outcome-summary");
  check(/hit rate \d+ %/.test(outcomes), `hit rate shown: ${outcomes}`);
  check((await page.locator("#outcome-chart polyline.line-hit").count()) === 1, "hit-rate trend line");
  check((await page.locator("#outcome-chart polyline.line-false").count()) === 1, "false-alarm trend line");
  check((await page.locator("#outcome-chart line.model-change").count()) >= 2, "model releases marked");
  check((await page.textContent("#outcome-kinds")).includes("concealed object"), "finding kinds");
  await page.locator("#outcomes").screenshot({ path: `${shots}/07b-outcomes.png` });

  step = "fleet page";
  await page.click('a[href="/fleet"]');
  await page.waitForURL(/\/fleet/);
  await page.waitForSelector('#fleet tr[data-agent="bay01-agent"].healthy', { timeout: 20000 });
  const healthy = await page.textContent('#fleet tr[data-agent="bay01-agent"]');
  check(healthy.includes("online") && healthy.includes("BAY01"), "the reporting agent is online");
  const silent = page.locator('#fleet tr[data-agent="bay02-agent"].problem');
  check((await silent.count()) === 1, "the silent agent is in red");
  check((await silent.textContent()).includes("never heard from"), "and says why");
  check((await page.textContent("#fleet-summary")).includes("1 need attention"), "summary counts it");
  await page.screenshot({ path: `${shots}/08-fleet.png`, fullPage: true });

  step = "queue: each finding kind with its record, and the often-wrong filter";
  await page.goto(`${base}/queue`);
  const kinds = page.locator("#queue .kind");
  check((await kinds.count()) > 0, "finding kinds in the queue");
  check(/concealed object \d+ %/.test(await page.textContent("#queue")), "with how often they were confirmed");
  check((await page.locator("#track-record").count()) === 1, "the track record table");
  await page.check('input[name="record"][value="often_wrong"]');
  await Promise.all([page.waitForURL(/record=often_wrong/), page.click("form.filters button")]);
  check(await page.isChecked('input[name="record"][value="often_wrong"]'), "the filter stays on");
  await page.click("#track-record summary");
  await page.screenshot({ path: `${shots}/08b-queue-record.png`, fullPage: true });

  step = "dataset export in the background";
  await page.click('a[href="/datasets"]');
  await page.waitForURL(/\/datasets/);
  await Promise.all([page.waitForEvent("load"), page.click('#export-form button[type="submit"]')]);
  await page.waitForSelector('#exports tr[data-state="done"]', { timeout: 30000 });
  const exported = await page.textContent('#exports tr[data-state="done"]');
  check(/cleared scans/.test(exported) && /labelled cases/.test(exported), `export summary: ${exported}`);
  check((await page.locator('#exports tr[data-state="done"] a[download]').count()) === 1, "a download link");
  await page.screenshot({ path: `${shots}/08c-datasets.png`, fullPage: true });

  step = "log out";
  await Promise.all([page.waitForURL(/\/login/), page.click('header form button')]);

  step = "an officer of another bay cannot open the case";
  await page.fill('input[name="username"]', "off2");
  await page.fill('input[name="password"]', password);
  await Promise.all([page.waitForURL(`${base}/queue`), page.click('button[type="submit"]')]);
  check((await page.locator(`#queue tr[data-href="/cases/${caseId}"]`).count()) === 0, "not in the other bay's queue");
  const response = await page.goto(`${base}/cases/${caseId}`);
  check(response.status() === 403, `expected 403, got ${response.status()}`);
  check((await page.textContent('[role="alert"]')).includes("not visible"), "says why");
  await page.screenshot({ path: `${shots}/09-forbidden.png`, fullPage: true });

  step = "no script errors";
  check(errors.length === 0, `page errors: ${errors.join("; ")}`);
  console.log(`browser: all steps passed; screenshots in ${shots}`);
} catch (e) {
  console.error(`browser test failed at "${step}": ${e.message}`);
  if (page) {
    console.error(`at ${page.url()}:\n${(await page.content().catch(() => "")).slice(0, 3000)}`);
    await page.screenshot({ path: `${shots}/failure.png`, fullPage: true }).catch(() => {});
  }
  process.exitCode = 1;
} finally {
  await browser.close();
}
