'use strict';
// Benchmark peer: WebSocket echo server on the `ws` package.
//
// One Node.js event loop. Each message goes back with its own type (text as text, binary as
// binary); ws checks text for UTF-8 itself and answers pings. No permessage-deflate; messages
// up to 64 MiB; only the path /ws is upgraded.
//
//   node server.js PORT     or     node server.js --port PORT

const http = require('http');
const { WebSocketServer } = require('ws');

const MAX_MESSAGE = 64 * 1024 * 1024;

function parsePort(args) {
  let text;
  if (args.length === 1) text = args[0];
  else if (args.length === 2 && args[0] === '--port') text = args[1];
  else {
    console.error('usage: node server.js PORT | --port PORT');
    process.exit(2);
  }
  const port = Number(text);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    console.error(`bad port: ${text}`);
    process.exit(2);
  }
  return port;
}

const port = parsePort(process.argv.slice(2));

// Plain HTTP requests (not upgrades) get a 404.
const server = http.createServer((req, res) => {
  res.writeHead(404, { 'Content-Type': 'text/plain' });
  res.end('not found\n');
});

const wss = new WebSocketServer({
  server,
  path: '/ws',
  perMessageDeflate: false,
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
