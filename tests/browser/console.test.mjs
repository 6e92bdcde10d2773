// The browser console (GET /) in a real headless Chromium, Debian's /usr/bin/chromium, driven by
// playwright-core: the page connects to websock, a typed message echoes, a 1 MiB binary message
// echoes intact (the page checks it byte by byte), a close code is shown, and websock's 101
// accepts the permessage-deflate offer Chromium always makes (the page shows it, and /metrics
// shows the messages went compressed). Loaded over https:// from websock's --tls-port, the page
// connects over wss:// and echoes the same way. Run by `make test-browser`; writes screenshots
// to $ARTIFACT_DIR/console.png and console-wss.png.
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import { createRequire } from "node:module";
import net from "node:net";
import os from "node:os";
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

// A throwaway test CA and a server certificate it signed for 127.0.0.1 (the openssl CLI, ECDSA
// P-256), and the base64 SHA-256 of the server certificate's public key (SubjectPublicKeyInfo):
// what Chromium's --ignore-certificate-errors-spki-list takes. A chain holding that key is
// accepted despite its unknown CA; any other certificate must still verify (none would here).
function makeTestCerts() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "websock-browser-tls-"));
  const f = (name) => path.join(dir, name);
  const openssl = (...args) =>
    execFileSync("openssl", args, { stdio: ["ignore", "ignore", "pipe"] });
  const p256 = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
  openssl("req", "-x509", ...p256, "-keyout", f("ca.key"), "-out", f("ca.crt"), "-days", "2",
          "-subj", "/CN=websock browser test CA", "-addext", "basicConstraints=critical,CA:TRUE",
          "-addext", "keyUsage=critical,keyCertSign");
  openssl("req", "-new", ...p256, "-keyout", f("server.key"), "-out", f("server.csr"),
          "-subj", "/CN=127.0.0.1");
  fs.writeFileSync(f("server.ext"), "basicConstraints=critical,CA:FALSE\n" +
                   "extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n");
  openssl("x509", "-req", "-in", f("server.csr"), "-CA", f("ca.crt"), "-CAkey", f("ca.key"),
          "-set_serial", "0x1919", "-days", "2", "-extfile", f("server.ext"),
          "-out", f("server.crt"));
  const spki = new crypto.X509Certificate(fs.readFileSync(f("server.crt")))
    .publicKey.export({ type: "spki", format: "der" });
  return { dir, cert: f("server.crt"), key: f("server.key"),
           spkiHash: crypto.createHash("sha256").update(spki).digest("base64") };
}

async function waitListening(port, proc, what) {
  const deadline = Date.now() + 5000;
  while (!(await canConnect(port))) {
    if (proc.exitCode !== null || Date.now() > deadline)
      throw new Error(`websock did not start on port ${port}: ${what()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

// Starts websock on a free loopback port (and a TLS one with { tls: certs }); stop() sends
// SIGTERM and checks a clean exit.
async function startWebsock(...flags) {
  const tls = typeof flags[0] === "object" ? flags.shift().tls : undefined;
  const port = await freePort();
  const tlsPort = tls ? await freePort() : undefined;
  const tlsFlags = tls ? ["--tls-port", String(tlsPort), "--tls-cert", tls.cert,
                          "--tls-key", tls.key] : [];
  const proc = spawn(WEBSOCK_BIN, ["--port", String(port), "--bind", "127.0.0.1",
                                   "--log-level", "debug", ...tlsFlags, ...flags],
                     { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  proc.stderr.on("data", (d) => { stderr += d; });
  const exited = new Promise((resolve) => {
    proc.on("exit", (code, signal) => resolve({ code, signal }));
  });
  await waitListening(port, proc, () => stderr);
  if (tls) await waitListening(tlsPort, proc, () => stderr);
  return {
    port,
    tlsPort,
    origin: `http://127.0.0.1:${port}`,
    tlsOrigin: tls && `https://127.0.0.1:${tlsPort}`,
    log: () => stderr,
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

let browser, certs;
before(async () => {
  certs = makeTestCerts();
  // Trusts the test server's key, and nothing else that fails verification (not the blanket
  // --ignore-certificate-errors).
  browser = await chromium.launch({
    executablePath: "/usr/bin/chromium", headless: true,
    args: [...CHROMIUM_FLAGS, `--ignore-certificate-errors-spki-list=${certs.spkiHash}`] });
});
after(async () => {
  await browser?.close();
  if (certs) fs.rmSync(certs.dir, { recursive: true, force: true });
});

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

test("over https:// the console connects over wss:// and echoes text and binary",
     { timeout: 60000 }, async (t) => {
  const ws = await startWebsock({ tls: certs });
  t.after(() => ws.stop());
  const page = await browser.newPage({ viewport: { width: 960, height: 760 } });
  t.after(() => page.close());
  const pageErrors = [];
  page.on("pageerror", (e) => pageErrors.push(e.message));
  const consoleErrors = [];  // where Chromium says why a WebSocket failed
  page.on("console", (m) => { if (m.type() === "error") consoleErrors.push(m.text()); });
  const cdp = await page.context().newCDPSession(page);
  await cdp.send("Network.enable");
  const opened = [];  // every WebSocket Chromium's network layer created, by URL
  cdp.on("Network.webSocketCreated", (e) => opened.push(e.url));

  const response = await page.goto(`${ws.tlsOrigin}/`);
  assert.equal(response.status(), 200);
  // the page came over TLS with the test CA's certificate
  const security = await response.securityDetails();
  assert.equal(security?.protocol, "TLS 1.3");
  assert.equal(security?.issuer, "websock browser test CA");
  // The page picks wss:// because it came over https://. Had it tried ws://, Chromium would
  // not stop it here (loopback is exempt from mixed-content blocking): websock's TLS port
  // would close the plain handshake, and the wait for "open" would fail with the reason.
  const wssUrl = `wss://127.0.0.1:${ws.tlsPort}/ws`;
  assert.equal(await page.evaluate(() => window.websockConsole.socket.url), wssUrl);
  await page.locator('#state[data-state="open"]').waitFor({ timeout: 10000 }).catch((e) => {
    throw new Error(`the console did not connect (${e.message.split("\n")[0]}); ` +
                    `page errors: ${JSON.stringify(pageErrors)}, ` +
                    `console errors: ${JSON.stringify(consoleErrors)}`);
  });
  assert.equal(await page.locator("#url").innerText(), wssUrl);
  assert.deepEqual(opened, [wssUrl]);

  const typed = "over TLS from Chromium, héllo wörld ✓";
  await page.locator("#text").fill(typed);
  await page.locator("#send-text").click();
  const textEcho = page.locator('#log li[data-kind="text"]');
  await textEcho.waitFor({ timeout: 10000 });
  assert.equal(await textEcho.getAttribute("data-ok"), "yes", await textEcho.innerText());
  assert.ok((await textEcho.innerText()).includes(typed));

  const size = 1 << 20;
  await page.locator("#binary-size").fill(String(size));
  await page.locator("#send-binary").click();
  const binaryEcho = page.locator('#log li[data-kind="binary"]');
  await binaryEcho.waitFor({ timeout: 30000 });
  assert.equal(await binaryEcho.getAttribute("data-ok"), "yes", await binaryEcho.innerText());
  assert.equal(Number(await binaryEcho.getAttribute("data-bytes")), size);
  assert.match(await binaryEcho.innerText(), /intact byte by byte/);

  await page.locator("#close-code").fill("4002");
  await page.locator("#close").click();
  await page.locator('#log li[data-kind="close"][data-code="4002"]').waitFor({ timeout: 10000 });
  assert.equal(await page.locator('#log li[data-ok="no"]').count(), 0);
  assert.deepEqual(pageErrors, []);
  assert.deepEqual(consoleErrors, []);
  fs.mkdirSync(ARTIFACT_DIR, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACT_DIR, "console-wss.png"), fullPage: true });

  // The server's side: TLS handshakes completed and none failed, the two messages echoed, and
  // the WebSocket's own connection (its 101 access line) was one whose TLS was established.
  const metric = await settledMetrics(ws.origin);
  assert.ok(metric("websock_tls_handshakes_total") >= 2, "the page's and the socket's");
  assert.equal(metric("websock_tls_handshake_failures_total"), 0);
  assert.equal(metric("websock_upgrades_total"), 1);
  assert.equal(metric("websock_messages_received_total"), 2);
  assert.equal(metric('websock_closes_total{code="4002"}'), 1);
  const upgrade = ws.log().match(/ access id=(\S+) .*path=\/ws status=101 /);
  assert.ok(upgrade, ws.log().slice(-3000));
  assert.match(ws.log(), new RegExp(`debug id=${upgrade[1]} .* TLS established: TLSv1\\.3 `));
});
