'use strict';
// Benchmark peer: WebSocket echo server on the `ws` package.
//
// One Node.js event loop. Each message goes back with its own type (text as text, binary as
// binary); ws checks text for UTF-8 itself and answers pings. Messages up to 64 MiB; only
// the path /ws is upgraded. No permessage-deflate unless --deflate, which turns on ws's own
// defaults (the `perMessageDeflate: true` of its documentation), spelled out below.
//
//   node server.js PORT [--deflate]     or     node server.js --port PORT [--deflate]

const http = require('http');
const { WebSocketServer } = require('ws');

const MAX_MESSAGE = 64 * 1024 * 1024;

// ws's permessage-deflate defaults, written out so the benchmark says what it ran: context
// takeover on its own side unless the client asks otherwise, the client's
// client_no_context_takeover accepted when offered, 15-bit windows, zlib's default level and
// memLevel 8, at most 10 zlib jobs at once (its thread-pool limiter). `threshold` (1024 bytes:
// smaller messages go out uncompressed) applies only when server_no_context_takeover was
// negotiated, which wsload does not offer, so every echo to it is compressed.
const DEFLATE = {
  serverNoContextTakeover: false,
  clientNoContextTakeover: undefined,
  serverMaxWindowBits: undefined,
  clientMaxWindowBits: undefined,
  zlibDeflateOptions: { level: -1, memLevel: 8 },
  concurrencyLimit: 10,
  threshold: 1024,
};

const args = process.argv.slice(2);
const deflate = args.includes('--deflate');

function parsePort(args) {
  let text;
  if (args.length === 1) text = args[0];
  else if (args.length === 2 && args[0] === '--port') text = args[1];
  else {
    console.error('usage: node server.js PORT [--deflate] | --port PORT [--deflate]');
    process.exit(2);
  }
  const port = Number(text);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    console.error(`bad port: ${text}`);
    process.exit(2);
  }
  return port;
}

const port = parsePort(args.filter((a) => a !== '--deflate'));

// Plain HTTP requests (not upgrades) get a 404.
const server = http.createServer((req, res) => {
  res.writeHead(404, { 'Content-Type': 'text/plain' });
  res.end('not found\n');
});

const wss = new WebSocketServer({
  server,
  path: '/ws',
  perMessageDeflate: deflate ? DEFLATE : false,
  maxPayload: MAX_MESSAGE,
  clientTracking: false,
});

wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => {
    ws.send(data, { binary: isBinary });
  });
  ws.on('error', () => {
    // a protocol error from the client: ws closes the connection itself
  });
});

server.on('error', (err) => {
  console.error(`node-echo: 127.0.0.1:${port}: ${err.message}`);
  process.exit(1);
});

server.listen(port, '127.0.0.1');
