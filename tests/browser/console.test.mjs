// The browser console (GET /) in a real headless Chromium, Debian's /usr/bin/chromium, driven by
// playwright-core: the page connects to websock, a typed message echoes, a 1 MiB binary message
// echoes intact (the page checks it byte by byte), a close code is shown, and websock's 101
// accepts the permessage-deflate offer Chromium always makes (the page shows it, and /metrics
// shows the messages went compressed). Run by `make test-browser`; writes a screenshot to
// $ARTIFACT_DIR/console.png.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import { createRequire } from "node:module";
import net from "node:net";
import path from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const fromRoot = (p) => path.resolve(root, p);
// playwright-core is installed under build/ (see the Makefile), not next to this file.
const require = createRequire(path.join(fromRoot(process.env.PLAYWRIGHT_DIR || "build/browser"),
                                        "package.json"));
const { chromium } = require("playwright-core");
const WEBSOCK_BIN = fromRoot(process.env.WEBSOCK_BIN || "build/websock");
const ARTIFACT_DIR = fromRoot(process.env.ARTIFACT_DIR || "build/artifacts");
const CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu",
                        "--disable-background-networking", "--disable-quic", "--no-first-run",
                        "--disable-component-update", "--disable-sync"];

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function canConnect(port) {
  return new Promise((resolve) => {
    const s = net.connect(port, "127.0.0.1");
    s.on("connect", () => { s.destroy(); resolve(true); });
    s.on("error", () => resolve(false));
  });
}

// Starts websock on a free loopback port; stop() sends SIGTERM and checks a clean exit.
async function startWebsock(...flags) {
  const port = await freePort();
  const proc = spawn(WEBSOCK_BIN, ["--port", String(port), "--bind", "127.0.0.1",
                                   "--log-level", "debug", ...flags],
                     { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  proc.stderr.on("data", (d) => { stderr += d; });
  const exited = new Promise((resolve) => {
    proc.on("exit", (code, signal) => resolve({ code, signal }));
  });
  const deadline = Date.now() + 5000;
  while (!(await canConnect(port))) {
    if (proc.exitCode !== null || Date.now() > deadline)
      throw new Error(`websock did not start on port ${port}: ${stderr}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return {
    port,
    origin: `http://127.0.0.1:${port}`,
    async stop() {
      proc.kill("SIGTERM");
      const timer = setTimeout(() => proc.kill("SIGKILL"), 10000);
      const { code, signal } = await exited;
      clearTimeout(timer);
      assert.equal(code, 0, `websock exited with ${code ?? signal}:\n${stderr.slice(-3000)}`);
      assert.doesNotMatch(stderr, /^\S+\s+error\s|Sanitizer|runtime error:/m, stderr.slice(-3000));
    },
  };
}

// websock's counters, once every WebSocket connection has ended (closes are counted then).
async function settledMetrics(origin) {
  const deadline = Date.now() + 5000;
  for (;;) {
    const text = await (await fetch(`${origin}/metrics`)).text();
    const value = (sample) => {
      const line = text.split("\n").find((l) => l.startsWith(sample + " "));
      return line === undefined ? undefined : Number(line.slice(sample.length + 1));
    };
    if (value("websock_connections_open") === 0) return value;
    assert.ok(Date.now() < deadline, `connections still open:\n${text}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

let browser;
before(async () => {
  browser = await chromium.launch({ executablePath: "/usr/bin/chromium", headless: true,
                                    args: CHROMIUM_FLAGS });
});
after(async () => { await browser?.close(); });

test("the console echoes text and 1 MiB of binary intact, and shows the close code",
     { timeout: 90000 }, async (t) => {
  const ws = await startWebsock();
  t.after(() => ws.stop());
  const page = await browser.newPage({ viewport: { width: 960, height: 760 } });
  t.after(() => page.close());
  const pageErrors = [];
  page.on("pageerror", (e) => pageErrors.push(e.message));

  // What went over the wire in the opening handshake, as Chromium's network layer saw it.
  const cdp = await page.context().newCDPSession(page);
  await cdp.send("Network.enable");
  let offered, answer;
  cdp.on("Network.webSocketWillSendHandshakeRequest", (e) => { offered = e.request.headers; });
  cdp.on("Network.webSocketHandshakeResponseReceived", (e) => { answer = e.response; });
  const header = (headers, name) =>
    Object.entries(headers ?? {}).find(([k]) => k.toLowerCase() === name)?.[1];

  const response = await page.goto(`${ws.origin}/`);
  assert.equal(response.status(), 200);
  assert.equal(response.headers()["content-type"], "text/html; charset=utf-8");
  await page.locator('#state[data-state="open"]').waitFor({ timeout: 10000 });
  assert.equal(await page.evaluate(() => window.websockConsole.socket.url),
               `ws://127.0.0.1:${ws.port}/ws`);

  // Chromium offers permessage-deflate with a valueless client_max_window_bits; websock accepts
  // it with its default answer, and the page shows the negotiated extension.
  const agreed = "permessage-deflate; client_no_context_takeover";
  assert.match(header(offered, "sec-websocket-extensions") ?? "", /permessage-deflate/);
  assert.equal(answer?.status, 101);
  assert.equal(header(answer.headers, "sec-websocket-extensions"), agreed);
  assert.equal(await page.evaluate(() => window.websockConsole.socket.extensions), agreed);
  assert.match(await page.locator("#facts").innerText(), /extensions: permessage-deflate/);

  const typed = "hello from Chromium, héllo wörld ✓";
  await page.locator("#text").fill(typed);
  await page.locator("#send-text").click();
  const textEcho = page.locator('#log li[data-kind="text"]');
  await textEcho.waitFor({ timeout: 10000 });
  assert.equal(await textEcho.getAttribute("data-ok"), "yes", await textEcho.innerText());
  assert.ok((await textEcho.innerText()).includes(typed));
  assert.equal(Number(await textEcho.getAttribute("data-bytes")), Buffer.byteLength(typed));
  assert.ok(Number(await textEcho.getAttribute("data-rtt")) >= 0);

  const size = 1 << 20;
  await page.locator("#binary-size").fill(String(size));
  await page.locator("#send-binary").click();
  const binaryEcho = page.locator('#log li[data-kind="binary"]');
  await binaryEcho.waitFor({ timeout: 30000 });
  assert.equal(await binaryEcho.getAttribute("data-ok"), "yes", await binaryEcho.innerText());
  assert.equal(Number(await binaryEcho.getAttribute("data-bytes")), size);
  assert.match(await binaryEcho.innerText(), /intact byte by byte/);

  await page.locator("#close-code").fill("4001");
  await page.locator("#close-reason").fill("bye from the browser");
  await page.locator("#close").click();
  const closed = page.locator('#log li[data-kind="close"]');
  await closed.waitFor({ timeout: 10000 });
  assert.equal(await closed.getAttribute("data-code"), "4001");
  assert.equal(await closed.getAttribute("data-clean"), "yes");
  assert.equal(await page.locator("#state").innerText(), "closed 4001");
  assert.equal(await page.locator('#log li[data-ok="no"]').count(), 0);
  assert.deepEqual(pageErrors, []);

  fs.mkdirSync(ARTIFACT_DIR, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACT_DIR, "console.png"), fullPage: true });

  // The server saw exactly this session: two messages each way and one close with 4001.
  // Chromium compressed both messages, so their wire payloads are the compressed ones; an echo
  // goes out compressed unless that does not shrink it (the random binary), then plain.
  const metric = await settledMetrics(ws.origin);
  const z = (direction, form) =>
    metric(`websock_deflate_bytes_total{direction="${direction}",form="${form}"}`);
  const plainBytes = Buffer.byteLength(typed) + size;
  console.log(`deflate counters: in ${z("in", "compressed")} wire / ${z("in", "plain")} plain, ` +
              `out ${z("out", "compressed")} wire / ${z("out", "plain")} plain`);
  assert.equal(metric("websock_upgrades_total"), 1);
  assert.equal(metric("websock_deflate_negotiated_total"), 1);
  assert.equal(metric("websock_messages_received_total"), 2);
  assert.equal(metric("websock_messages_sent_total"), 2);
  assert.equal(z("in", "plain"), plainBytes);
  assert.equal(metric("websock_payload_received_bytes_total"), z("in", "compressed"));
  assert.equal(metric("websock_payload_sent_bytes_total"),
               z("out", "compressed") + plainBytes - z("out", "plain"));
  assert.equal(metric('websock_closes_total{code="4001"}'), 1);
});

test("the console connects to the configured --path", { timeout: 30000 }, async (t) => {
  const ws = await startWebsock("--path", "/echo");
  t.after(() => ws.stop());
  const page = await browser.newPage();
  t.after(() => page.close());
  await page.goto(`${ws.origin}/`);
  await page.locator('#state[data-state="open"]').waitFor({ timeout: 10000 });
  assert.equal(await page.locator("#url").innerText(), `ws://127.0.0.1:${ws.port}/echo`);
  await page.locator("#text").fill("on /echo");
  await page.locator("#text").press("Enter");
  const echo = page.locator('#log li[data-kind="text"][data-ok="yes"]');
  await echo.waitFor({ timeout: 10000 });
  assert.ok((await echo.innerText()).includes("on /echo"));
});
