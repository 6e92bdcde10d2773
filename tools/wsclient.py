#!/usr/bin/env python3
"""A line-at-a-time WebSocket client that needs only Python 3's standard library.

    python3 tools/wsclient.py ws://127.0.0.1:8888/ws

Each line typed (or piped) on stdin goes out as one text message; every message that comes
back is printed on stdout, one per line (binary ones as hex). Status lines go to stderr.
End of input (Ctrl-D) sends Close 1000 and waits for the server's Close; Ctrl-C does the same.
Exit status: 0 after a clean close, 1 on any failure (refused, bad handshake, connection lost).

It exists so the README's quick start works on a machine with nothing installed beyond what
building websock needs: no pip, no venv, no npm. It is a tool for trying the server by hand,
not a client library (no permessage-deflate, no reconnects).
"""

import base64
import hashlib
import os
import socket
import ssl
import struct
import sys
import threading
import urllib.parse

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


def status(text):
    print(text, file=sys.stderr, flush=True)


def connect(url):
    """Open the TCP (or TLS, for wss:) connection and do the opening handshake."""
    u = urllib.parse.urlsplit(url)
    if u.scheme not in ("ws", "wss") or not u.hostname:
        raise ValueError("expected ws://host[:port]/path or wss://…")
    port = u.port or (443 if u.scheme == "wss" else 80)
    sock = socket.create_connection((u.hostname, port), timeout=10)
    if u.scheme == "wss":
        sock = ssl.create_default_context().wrap_socket(sock, server_hostname=u.hostname)
    path = (u.path or "/") + (f"?{u.query}" if u.query else "")
    host = u.netloc.rpartition("@")[2]
    key = base64.b64encode(os.urandom(16))
    sock.sendall(b"GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 b"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n"
                 % (path.encode(), host.encode(), key))
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("the server closed the connection during the handshake")
        head += chunk
        if len(head) > 65536:
            raise ConnectionError("handshake answer too long")
    head, _, rest = head.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    if lines[0].split(" ", 2)[1:2] != ["101"]:
        raise ConnectionError(f"handshake refused: {lines[0]}")
    fields = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
    accept = base64.b64encode(hashlib.sha1(key + GUID).digest()).decode()
    if fields.get("sec-websocket-accept") != accept:
        raise ConnectionError("handshake answer has a wrong Sec-WebSocket-Accept")
    sock.settimeout(None)
    return sock, rest


class Client:
    def __init__(self, sock, pending):
        self.sock = sock
        self.pending = pending  # bytes that arrived behind the handshake answer
        self.send_lock = threading.Lock()
        self.close_sent = False
        self.closed = threading.Event()
        self.clean = False

    def send(self, opcode, payload):
        """One masked, unfragmented frame (clients must mask, RFC 6455 §5.3)."""
        n = len(payload)
        if n < 126:
            head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
        elif n < 65536:
            head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
        else:
            head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        with self.send_lock:
            if opcode == OP_CLOSE:
                if self.close_sent:
                    return
                self.close_sent = True
            elif self.close_sent:
                return
            self.sock.sendall(head + mask + masked)

    def close(self, code=1000):
        try:
            self.send(OP_CLOSE, struct.pack("!H", code))
        except OSError:
            self.closed.set()

    def recv_exact(self, n):
        while len(self.pending) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("connection lost (no Close frame)")
            self.pending += chunk
        out, self.pending = self.pending[:n], self.pending[n:]
        return out

    def read_frame(self):
        b0, b1 = self.recv_exact(2)
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", self.recv_exact(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", self.recv_exact(8))[0]
        if b1 & 0x80:
            raise ConnectionError("the server sent a masked frame")
        return b0 & 0x80, b0 & 0x0F, self.recv_exact(n)

    def show(self, opcode, payload):
        if opcode == OP_TEXT:
            print(payload.decode("utf-8", "replace"), flush=True)
        else:
            print(f"[binary, {len(payload)} bytes] {payload.hex()}", flush=True)

    def read_loop(self):
        """Print messages until the close handshake ends; answers pings."""
        message, message_op = b"", None
        try:
            while True:
                fin, opcode, payload = self.read_frame()
                if opcode == OP_PING:
                    self.send(OP_PONG, payload)
                elif opcode == OP_PONG:
                    pass
                elif opcode == OP_CLOSE:
                    code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                    reason = payload[2:].decode("utf-8", "replace")
                    status(f"closed by the server: {code} {reason}".rstrip()
                           if not self.close_sent else f"closed: {code} {reason}".rstrip())
                    self.close(code if code != 1005 else 1000)  # echo it when the server began
                    self.clean = code in (1000, 1001, 1005)
                    return
                else:
                    if opcode != OP_CONT:
                        message_op, message = opcode, b""
                    message += payload
                    if fin:
                        self.show(message_op, message)
        except (OSError, ConnectionError) as e:
            status(f"error: {e}")
        finally:
            self.closed.set()


def main(argv):
    if len(argv) == 2 and argv[1] in ("-h", "--help"):
        print(__doc__.strip())
        return 0
    if len(argv) != 2:
        print("usage: python3 tools/wsclient.py ws://HOST:PORT/PATH", file=sys.stderr)
        return 2
    try:
        sock, rest = connect(argv[1])
    except (OSError, ValueError, ConnectionError) as e:
        status(f"error: {argv[1]}: {e}")
        return 1
    client = Client(sock, rest)
    status(f"connected to {argv[1]}: type lines, they come back; Ctrl-D or Ctrl-C ends")
    threading.Thread(target=client.read_loop, daemon=True).start()
    # stdin is read on its own thread, so a Close from the server ends the client at once.
    threading.Thread(target=send_lines, args=(client,), daemon=True).start()
    try:
        while not client.closed.wait(0.2):
            pass
    except KeyboardInterrupt:
        client.close(1000)
        if not client.closed.wait(5):
            status("error: no Close from the server within 5 s")
    sock.close()
    return 0 if client.clean else 1


def send_lines(client):
    """Each stdin line as a text message; end of input starts the close handshake."""
    try:
        for line in sys.stdin:
            client.send(OP_TEXT, line.rstrip("\r\n").encode("utf-8", "replace"))
    except OSError as e:
        status(f"error: {e}")
    client.close(1000)
    if not client.closed.wait(5):
        status("error: no Close from the server within 5 s")
        client.closed.set()

if __name__ == "__main__":
    sys.exit(main(sys.argv))
