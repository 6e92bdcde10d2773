'use strict';
// Interop client on the `ws` package.
//
//   node client.js [--ca FILE] URL SCENARIO...
//                                  (SCENARIO: text, binary, fragmented, ping, close, deflate, all)
//
// A wss:// URL is verified (certificate chain and host name) against the CA certificates in
// FILE (PEM), or Node's own list when --ca is not given.
// Prints one line per scenario, "PASS name" or "FAIL name: why", and exits 0 when every
// scenario passed, 1 when one failed, 2 on a usage error. The payloads are the same in every
// interop client (tests/interop/README.md).

const fs = require('fs');
const WebSocket = require('ws');

const TIMEOUT_MS = 5000;
const TEXT = 'interop text: h\u00e9llo w\u00f6rld \u20ac \u{1F600}';
const BINARY = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
const FRAGMENTS = ['frag-1 \u00e9\u00e9|', 'frag-2 \u20ac!|', 'frag-3 \u{1F600}|'];
const PING = Buffer.concat([Buffer.from('interop-ping'), Buffer.from([0x00, 0xff, 0x80])]);
const CLOSE_CODE = 4001;
const CLOSE_REASON = 'interop-bye';
// The deflate scenario's payloads: repetitive, so that both sides compress them (ws compresses
// only messages of at least 1024 bytes by default).
const DEFLATE_TEXT = 'interop deflate: h\u00e9llo w\u00f6rld \u20ac \u{1F600} '.repeat(64);
const DEFLATE_BINARY = Buffer.concat(Array(16).fill(BINARY));

// One connection whose events are queued, so a scenario can await them in order.
class Client {
  // ca: PEM text of the CAs to trust instead of Node's list (tls.connect's option, which ws
  // passes on for wss:// URLs), or undefined.
  constructor(url, perMessageDeflate = false, ca = undefined) {
    this.ws = new WebSocket(url, { perMessageDeflate, maxPayload: 0, ca });
    this.events = [];
    this.waiter = null;
    const push = (ev) => {
      this.events.push(ev);
      if (this.waiter) this.waiter();
    };
    this.ws.on('open', () => push({ type: 'open' }));
    this.ws.on('message', (data, isBinary) => push({ type: 'message', data, isBinary }));
    this.ws.on('pong', (data) => push({ type: 'pong', data }));
    this.ws.on('close', (code, reason) => push({ type: 'close', code, reason: reason.toString() }));
    this.ws.on('error', (err) => push({ type: 'error', err }));
  }

  // The next event, which must be of the given type.
  async next(type) {
    const deadline = Date.now() + TIMEOUT_MS;
    while (this.events.length === 0) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no ${type} event within ${TIMEOUT_MS} ms`);
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.waiter = null;
    }
    const ev = this.events.shift();
    if (ev.type === 'error') throw new Error(`${ev.err.message} (waiting for ${type})`);
    if (ev.type !== type) {
      const detail = ev.type === 'close' ? ` ${ev.code} ${JSON.stringify(ev.reason)}` : '';
      throw new Error(`expected ${type}, got ${ev.type}${detail}`);
    }
    return ev;
  }

  async expectEcho(want) {
    const ev = await this.next('message');
    const wantBinary = Buffer.isBuffer(want);
    if (ev.isBinary !== wantBinary) {
      throw new Error(`echo is ${ev.isBinary ? 'binary' : 'text'}, sent ${wantBinary ? 'binary' : 'text'}`);
    }
    const wantBytes = wantBinary ? want : Buffer.from(want, 'utf8');
    if (!ev.data.equals(wantBytes)) {
      throw new Error(`echo ${ev.data.toString('hex')} differs from ${wantBytes.toString('hex')}`);
    }
  }

  // Close with a code; the close event carries the code of the server's Close frame (1006
  // when none came).
  async closeExpecting(code, reason = '') {
    this.ws.close(code, reason);
    const ev = await this.next('close');
    if (ev.code !== code) {
      throw new Error(`server answered Close ${code} with ${ev.code} (reason ${JSON.stringify(ev.reason)})`);
    }
  }

  terminate() {
    this.ws.terminate();
  }
}

const SCENARIOS = {
  async text(c) {
    c.ws.send(TEXT);
    await c.expectEcho(TEXT);
    await c.closeExpecting(1000);
  },
  async binary(c) {
    c.ws.send(BINARY);
    await c.expectEcho(BINARY);
    await c.closeExpecting(1000);
  },
  async fragmented(c) {
    // fin: false makes ws send a frame that does not end the message; the following sends
    // go out as continuation frames until one has fin: true.
    FRAGMENTS.forEach((f, i) => c.ws.send(f, { binary: false, fin: i === FRAGMENTS.length - 1 }));
    await c.expectEcho(FRAGMENTS.join(''));
    await c.closeExpecting(1000);
  },
  async ping(c) {
    c.ws.ping(PING);
    const ev = await c.next('pong');
    if (!ev.data.equals(PING)) {
      throw new Error(`pong payload ${ev.data.toString('hex')} differs from ping payload ${PING.toString('hex')}`);
    }
    await c.closeExpecting(1000);
  },
  async close(c) {
    await c.closeExpecting(CLOSE_CODE, CLOSE_REASON);
  },
  async deflate(c) {
    if (!c.ws.extensions.startsWith('permessage-deflate')) {
      throw new Error(`permessage-deflate not negotiated (answer ${JSON.stringify(c.ws.extensions)})`);
    }
    c.ws.send(DEFLATE_TEXT);
    await c.expectEcho(DEFLATE_TEXT);
    c.ws.send(DEFLATE_BINARY);
    await c.expectEcho(DEFLATE_BINARY);
    await c.closeExpecting(1000);
  },
};

async function main(argv) {
  if (argv.length === 1 && argv[0] === '--version') {
    console.log(`ws ${require('ws/package.json').version}`);
    return 0;
  }
  let ca;
  if (argv[0] === '--ca') {
    ca = fs.readFileSync(argv[1]);
    argv = argv.slice(2);
  }
  const [url, ...rest] = argv;
  const names = rest.length === 1 && rest[0] === 'all' ? Object.keys(SCENARIOS) : rest;
  if (!url || names.length === 0 || names.some((n) => !(n in SCENARIOS))) {
    console.error(`usage: node client.js [--ca FILE] URL SCENARIO... (${Object.keys(SCENARIOS).join(', ')} or all)`);
    return 2;
  }
  let failed = false;
  for (const name of names) {
    const c = new Client(url, name === 'deflate', ca);
    try {
      await c.next('open');
      await SCENARIOS[name](c);
      console.log(`PASS ${name}`);
    } catch (err) {
      console.log(`FAIL ${name}: ${err.message}`);
      failed = true;
    } finally {
      c.terminate();
    }
  }
  return failed ? 1 : 0;
}

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
