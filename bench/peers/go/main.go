// Benchmark peer: WebSocket echo server on gorilla/websocket.
//
// Run with GOMAXPROCS=1 (run.sh sets it; main sets it too when the variable is absent), so
// all goroutines share one processor. One goroutine per connection reads a whole message and
// writes it back with the same type. Text is checked to be UTF-8 (gorilla leaves that to the
// application) and an invalid one closes the connection with 1007, as the other peers do.
// Compression is off unless --deflate, which sets EnableCompression: gorilla then answers a
// permessage-deflate offer with server_no_context_takeover and client_no_context_takeover
// (it supports no other mode) and compresses every echo at its default level (1), with
// flate writers and readers pooled across connections. Messages up to 64 MiB.
//
//	go-echo PORT [--deflate]     or     go-echo --port PORT [--deflate]
package main

import (
	"fmt"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"
)

const maxMessage = 64 << 20

var upgrader = websocket.Upgrader{
	ReadBufferSize:    16 << 10,
	WriteBufferSize:   16 << 10,
	EnableCompression: false,
	// The load generator sends no Origin; accept any.
	CheckOrigin: func(*http.Request) bool { return true },
}

func echo(w http.ResponseWriter, r *http.Request) {
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // Upgrade has already answered with an HTTP error
	}
	defer conn.Close()
	conn.SetReadLimit(maxMessage)
	for {
		kind, data, err := conn.ReadMessage()
		if err != nil {
			return // Close from the peer (gorilla replies to it), limit exceeded, or I/O error
		}
		if kind == websocket.TextMessage && !utf8.Valid(data) {
			msg := websocket.FormatCloseMessage(websocket.CloseInvalidFramePayloadData, "")
			_ = conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
			return
		}
		if err := conn.WriteMessage(kind, data); err != nil {
			return
		}
	}
}

func parsePort(args []string) (int, error) {
	var s string
	if n := len(args); n > 0 && args[n-1] == "--deflate" {
		upgrader.EnableCompression = true
		args = args[:n-1]
	}
	switch {
	case len(args) == 1:
		s = args[0]
	case len(args) == 2 && args[0] == "--port":
		s = args[1]
	default:
		return 0, fmt.Errorf("usage: go-echo PORT [--deflate] | --port PORT [--deflate]")
	}
	p, err := strconv.Atoi(s)
	if err != nil || p <= 0 || p > 65535 {
		return 0, fmt.Errorf("bad port: %s", s)
	}
	return p, nil
}

func main() {
	port, err := parsePort(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(1)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/ws", echo)
	srv := &http.Server{Addr: fmt.Sprintf("127.0.0.1:%d", port), Handler: mux}
	if err := srv.ListenAndServe(); err != nil {
		fmt.Fprintf(os.Stderr, "go-echo: %v\n", err)
		os.Exit(1)
	}
}
