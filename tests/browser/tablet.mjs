// The officers' tablet page in real headless Chromium, with the bay cut off from the server:
// sign in (a wrong code refused), see the live view with the overlay, the container code read
// by the camera, the findings and the declaration; toggle a layer; record a seal and an
// examination result (a discrepancy without a note refused), and see that they wait at the bay
// for the server. Screenshots go to $SCREENSHOT_DIR. Driven by tests/tests/tablet_browser.rs.
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";

const base = process.env.TABLET_URL;
const code = process.env.OFFICER_CODE;
const containerCode = process.env.CONTAINER_CODE;
const shots = process.env.SCREENSHOT_DIR ?? "screenshots";
mkdirSync(shots, { recursive: true });

let step = "start";
let page;
const check = (cond, message) => { if (!cond) throw new Error(`${step}: ${message}`); };

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-dev-shm-usage"],
});
try {
  // A tablet in landscape.
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, hasTouch: true });
  page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));

  step = "sign in";
  await page.goto(base + "/");
  await page.locator("#signin").waitFor({ state: "visible" });
  await page.fill("#code", "blo_wrong");
  await page.click("#signin button");
  await page.waitForFunction(() => document.querySelector("#signin-error").textContent.length > 0);
  check((await page.textContent("#signin-error")).includes("unknown access code"), "a wrong code is refused");
  await page.fill("#code", code);
  await page.click("#signin button");
  await page.locator("#app").waitFor({ state: "visible" });

  step = "live view with the overlay";
  await page.waitForFunction(() => document.querySelector("#camera").textContent.includes("live"), null, { timeout: 60000 });
  await page.waitForFunction(() => { const i = document.querySelector("#live"); return i.complete && i.naturalWidth === 1280; }, null, { timeout: 30000 });
  await page.waitForFunction(() => document.querySelector("#live-note").textContent.includes("Findings drawn"), null, { timeout: 30000 });

  step = "container code read by the camera";
  await page.waitForFunction((c) => document.querySelector("#code-read").textContent === c, containerCode, { timeout: 60000 });
  const detail = await page.textContent("#code-detail");
  check(detail.includes("Check digit valid"), `check-digit status shown: ${detail}`);
  check(detail.includes("Same as the scanner"), `agreement with the scanner shown: ${detail}`);
  check(/confidence \d+ %/.test(detail), `confidence shown: ${detail}`);

  step = "findings and declaration side by side";
  check((await page.locator("#findings li").count()) > 0, "findings listed");
  check((await page.textContent("#lane")).match(/RED|YELLOW/), "lane shown");
  await page.locator("#declaration table").waitFor();
  check((await page.textContent("#declaration")).includes("Cotton fabric"), "declared goods shown");

  step = "touch targets";
  for (const b of await page.locator("button").all()) {
    if (!(await b.isVisible())) continue;
    const box = await b.boundingBox();
    check(box.height >= 56 && box.width >= 56, `button "${await b.textContent()}" is ${box.width}x${box.height}`);
  }

  step = "toggle a layer";
  const heat = page.locator('#toggles button', { hasText: "heat" });
  await heat.waitFor();
  check((await heat.getAttribute("aria-pressed")) === "true", "heat on at first");
  await heat.tap();
  check((await heat.getAttribute("aria-pressed")) === "false", "heat toggled off");
  check(await page.locator('#stack img[data-layer="heat"]').evaluate((i) => i.classList.contains("hidden")), "heat layer hidden");
  await page.screenshot({ path: `${shots}/11-tablet.png`, fullPage: true });

  step = "a discrepancy needs a note";
  await page.tap('button[data-value="discrepancy"]');
  await page.tap("#send");
  await page.waitForFunction(() => document.querySelector("#status").textContent.length > 0);
  check((await page.textContent("#status")).includes("needs a note"), "refused without a note");

  step = "record while the server is away";
  await page.tap('button[data-value="broken"]');
  await page.fill("#note", "Seal 4711 cut; dense cartons behind the textiles");
  await page.tap("#send");
  await page.waitForFunction(() => document.querySelector("#status").textContent.includes("Saved at the bay"));
  await page.waitForFunction(() => document.querySelector("#queue").textContent.includes("waiting for the server"), null, { timeout: 10000 });
  check((await page.locator('button[aria-pressed="true"][data-field]').count()) === 2, "choices stay visible until the next container");
  await page.screenshot({ path: `${shots}/12-tablet-recorded.png`, fullPage: true });

  step = "sign out on a shared tablet";
  await page.tap("#signout");
  await page.waitForSelector("#signin:not(.hidden)");
  check(await page.locator("#app").evaluate((a) => a.classList.contains("hidden")), "the bay view is hidden");
  const after = await page.evaluate(async () => (await fetch("/api/v1/bay", { credentials: "same-origin" })).status);
  check(after === 401, `the old session is over (GET /api/v1/bay: ${after})`);

  check(errors.length === 0, `no script errors: ${errors.join("; ")}`);
  console.log("tablet browser test passed");
} catch (e) {
  if (page) await page.screenshot({ path: `${shots}/tablet-failure.png`, fullPage: true }).catch(() => {});
  console.error(String(e));
  process.exitCode = 1;
} finally {
  await browser.close();
}
