// Interop client on github.com/gorilla/websocket.
//
//	go-client [--ca FILE] URL SCENARIO...
//	                              (SCENARIO: text, binary, fragmented, ping, close, deflate, all)
//
// A wss:// URL is verified (certificate chain and host name, by crypto/tls) against the CA
// certificates in FILE (PEM), or the system's when --ca is not given.
// Prints one line per scenario, "PASS name" or "FAIL name: why", and exits 0 when every
// scenario passed, 1 when one failed, 2 on a usage error. The payloads are the same in every
// interop client (tests/interop/README.md).
package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/gorilla/websocket"
)

const (
	timeout     = 5 * time.Second
	text        = "interop text: h\u00e9llo w\u00f6rld \u20ac \U0001F600"
	closeCode   = 4001
	closeReason = "interop-bye"
	// gorilla cuts an outgoing message into frames of exactly its write buffer size, so every
	// fragment is this long (in bytes; the "é", "€" and "😀" keep them equal).
	fragmentLen = 12
)

var (
	fragments = []string{"frag-1 \u00e9\u00e9|", "frag-2 \u20ac!|", "frag-3 \U0001F600|"}
	binary    = func() []byte {
		b := make([]byte, 256)
		for i := range b {
			b[i] = byte(i)
		}
		return b
	}()
	pingPayload = append([]byte("interop-ping"), 0x00, 0xff, 0x80)
	// The deflate scenario's payloads: repetitive, so that both sides compress them.
	deflateText   = strings.Repeat("interop deflate: h\u00e9llo w\u00f6rld \u20ac \U0001F600 ", 64)
	deflateBinary = bytes.Repeat(binary, 16)
)

type client struct {
	conn       *websocket.Conn
	pongs      [][]byte
	extensions string // the server's Sec-WebSocket-Extensions answer
}

// tlsConfig is the TLS configuration of wss:// URLs; nil means crypto/tls's defaults.
var tlsConfig *tls.Config

// trustOnly makes wss:// trust the CA certificates of a PEM file instead of the system's.
func trustOnly(caFile string) error {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return fmt.Errorf("no certificate in %s", caFile)
	}
	tlsConfig = &tls.Config{RootCAs: pool}
	return nil
}

func dial(url string, writeBufferSize int, compression bool) (*client, error) {
	d := websocket.Dialer{HandshakeTimeout: timeout, WriteBufferSize: writeBufferSize,
		EnableCompression: compression, TLSClientConfig: tlsConfig}
	conn, resp, err := d.Dial(url, nil)
	if err != nil {
		return nil, err
	}
	c := &client{conn: conn, extensions: resp.Header.Get("Sec-WebSocket-Extensions")}
	conn.SetPongHandler(func(data string) error {
		c.pongs = append(c.pongs, []byte(data))
		return nil
	})
	// We send our Close before reading the server's, so the default reply is not wanted.
	conn.SetCloseHandler(func(int, string) error { return nil })
	return c, nil
}

func (c *client) expectEcho(wantType int, want []byte) error {
	c.conn.SetReadDeadline(time.Now().Add(timeout))
	typ, got, err := c.conn.ReadMessage()
	if err != nil {
		return fmt.Errorf("reading the echo: %w", err)
	}
	if typ != wantType {
		return fmt.Errorf("echo has message type %d, sent %d", typ, wantType)
	}
	if !bytes.Equal(got, want) {
		return fmt.Errorf("echo %x differs from %x", got, want)
	}
	return nil
}

// closeExpecting sends a Close with the code and reads until the server's Close, whose code
// must be the same.
func (c *client) closeExpecting(code int, reason string) error {
	msg := websocket.FormatCloseMessage(code, reason)
	if err := c.conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(timeout)); err != nil {
		return fmt.Errorf("sending Close: %w", err)
	}
	c.conn.SetReadDeadline(time.Now().Add(timeout))
	for {
		typ, data, err := c.conn.ReadMessage()
		if err == nil {
			return fmt.Errorf("message (type %d, %q) instead of the server's Close", typ, data)
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) {
			return fmt.Errorf("no Close from the server: %w", err)
		}
		if ce.Code != code {
			return fmt.Errorf("server answered Close %d with %d (reason %q)", code, ce.Code, ce.Text)
		}
		return nil
	}
}

func scenarioText(c *client) error {
	if err := c.conn.WriteMessage(websocket.TextMessage, []byte(text)); err != nil {
		return err
	}
	if err := c.expectEcho(websocket.TextMessage, []byte(text)); err != nil {
		return err
	}
	return c.closeExpecting(websocket.CloseNormalClosure, "")
}

func scenarioBinary(c *client) error {
	if err := c.conn.WriteMessage(websocket.BinaryMessage, binary); err != nil {
		return err
	}
	if err := c.expectEcho(websocket.BinaryMessage, binary); err != nil {
		return err
	}
	return c.closeExpecting(websocket.CloseNormalClosure, "")
}

// gorilla has no call that sends one frame of a message; its NextWriter flushes a frame each
// time the write buffer fills (a non-final frame) and the rest on Close (the final frame).
// With a write buffer of fragmentLen bytes, each fragment goes out as its own frame.
func scenarioFragmented(c *client) error {
	w, err := c.conn.NextWriter(websocket.TextMessage)
	if err != nil {
		return err
	}
	for _, f := range fragments {
		if len(f) != fragmentLen {
			return fmt.Errorf("fragment %q is %d bytes, not %d", f, len(f), fragmentLen)
		}
		if _, err := w.Write([]byte(f)); err != nil {
			return err
		}
	}
	if err := w.Close(); err != nil {
		return err
	}
	whole := []byte(strings.Join(fragments, ""))
	if err := c.expectEcho(websocket.TextMessage, whole); err != nil {
		return err
	}
	return c.closeExpecting(websocket.CloseNormalClosure, "")
}

// The pong handler runs while a read is in progress: the one that waits for the server's
// Close, which the server sends after the Pong.
func scenarioPing(c *client) error {
	if err := c.conn.WriteControl(websocket.PingMessage, pingPayload, time.Now().Add(timeout)); err != nil {
		return err
	}
	closeErr := c.closeExpecting(websocket.CloseNormalClosure, "")
	if len(c.pongs) == 0 {
		return fmt.Errorf("no Pong before the server's Close (%v)", closeErr)
	}
	if !bytes.Equal(c.pongs[0], pingPayload) {
		return fmt.Errorf("pong payload %x differs from ping payload %x", c.pongs[0], pingPayload)
	}
	return closeErr
}

func scenarioClose(c *client) error {
	return c.closeExpecting(closeCode, closeReason)
}

// gorilla offers "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
// and refuses an answer without both; it compresses every message it writes once negotiated.
func scenarioDeflate(c *client) error {
	if !strings.HasPrefix(c.extensions, "permessage-deflate") {
		return fmt.Errorf("permessage-deflate not negotiated (answer %q)", c.extensions)
	}
	c.conn.EnableWriteCompression(true)
	if err := c.conn.WriteMessage(websocket.TextMessage, []byte(deflateText)); err != nil {
		return err
	}
	if err := c.expectEcho(websocket.TextMessage, []byte(deflateText)); err != nil {
		return err
	}
	if err := c.conn.WriteMessage(websocket.BinaryMessage, deflateBinary); err != nil {
		return err
	}
	if err := c.expectEcho(websocket.BinaryMessage, deflateBinary); err != nil {
		return err
	}
	return c.closeExpecting(websocket.CloseNormalClosure, "")
}

var scenarios = []struct {
	name string
	run  func(*client) error
}{
	{"text", scenarioText},
	{"binary", scenarioBinary},
	{"fragmented", scenarioFragmented},
	{"ping", scenarioPing},
	{"close", scenarioClose},
	{"deflate", scenarioDeflate},
}

func find(name string) func(*client) error {
	for _, s := range scenarios {
		if s.name == name {
			return s.run
		}
	}
	return nil
}

func version() string {
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, dep := range info.Deps {
			if dep.Path == "github.com/gorilla/websocket" {
				return dep.Version
			}
		}
	}
	return "unknown"
}

func main() {
	args := os.Args[1:]
	if len(args) == 1 && args[0] == "--version" {
		fmt.Println("gorilla/websocket", version())
		return
	}
	if len(args) > 2 && args[0] == "--ca" {
		if err := trustOnly(args[1]); err != nil {
			fmt.Fprintln(os.Stderr, "go-client: --ca:", err)
			os.Exit(2)
		}
		args = args[2:]
	}
	names := []string{}
	if len(args) == 2 && args[1] == "all" {
		for _, s := range scenarios {
			names = append(names, s.name)
		}
	} else if len(args) > 1 {
		names = args[1:]
	}
	for _, n := range names {
		if find(n) == nil {
			names = nil
		}
	}
	if len(names) == 0 {
		fmt.Fprintln(os.Stderr, "usage: go-client [--ca FILE] URL SCENARIO... (text, binary, fragmented, ping, close, deflate or all)")
		os.Exit(2)
	}
	failed := false
	for _, name := range names {
		bufSize := 0 // the library's default
		if name == "fragmented" {
			bufSize = fragmentLen
		}
		c, err := dial(args[0], bufSize, name == "deflate")
		if err == nil {
			err = find(name)(c)
			c.conn.Close()
		}
		if err != nil {
			fmt.Printf("FAIL %s: %v\n", name, err)
			failed = true
		} else {
			fmt.Printf("PASS %s\n", name)
		}
	}
	if failed {
		os.Exit(1)
	}
}
