//! Benchmark peer: WebSocket echo server on tokio-tungstenite.
//!
//! One OS thread (tokio current-thread runtime); every connection is a task on it.
//! Text comes back as text, binary as binary; messages up to 64 MiB; no compression
//! (tungstenite has no permessage-deflate). Pings are answered by tungstenite itself; a bad
//! frame (invalid UTF-8, too large, protocol error) gets a Close with 1007, 1009 or 1002.
//!
//!     rust-echo PORT            or   rust-echo --port PORT
//!
//! Replies are queued with `feed` and flushed only when no further message is ready to be
//! read, so pipelined messages share write syscalls, while a lone message is sent at once.

use std::net::SocketAddr;

use futures_util::{FutureExt, SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error, Message};

const MAX_MESSAGE: usize = 64 << 20;
/// tungstenite zero-fills the whole free part of its read buffer before every read(), so its
/// 128 KiB default costs a 128 KiB memset per read: at 20 B messages that was most of the CPU
/// time (about 55k msg per CPU-second, against 240k with 16 KiB, measured here). 16 KiB
/// keeps large messages about as fast as 64 KiB or 128 KiB did. RUST_ECHO_READ_BUFFER=BYTES overrides it.
const READ_BUFFER: usize = 16 << 10;
const WS_PATH: &str = "/ws";

fn parse_port() -> Result<u16, String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let text = match args.as_slice() {
        [p] => p.as_str(),
        [flag, p] if flag == "--port" => p.as_str(),
        _ => return Err("usage: rust-echo PORT | --port PORT".into()),
    };
    text.parse::<u16>()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| format!("bad port: {text}"))
}

// The signature is the one tungstenite's handshake Callback requires.
#[allow(clippy::result_large_err)]
fn check_path(req: &Request, resp: Response) -> Result<Response, ErrorResponse> {
    if req.uri().path() == WS_PATH {
        Ok(resp)
    } else {
        let mut err = ErrorResponse::new(Some("not found\n".to_string()));
        *err.status_mut() = StatusCode::NOT_FOUND;
        Err(err)
    }
}

async fn serve(tcp: TcpStream) -> Result<(), Error> {
    let _ = tcp.set_nodelay(true);
    let read_buffer = std::env::var("RUST_ECHO_READ_BUFFER")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(READ_BUFFER);
    let config = WebSocketConfig::default()
        .read_buffer_size(read_buffer)
        .max_message_size(Some(MAX_MESSAGE))
        .max_frame_size(Some(MAX_MESSAGE));
    let mut ws =
        tokio_tungstenite::accept_hdr_async_with_config(tcp, check_path, Some(config)).await?;

    // true while replies sit in tungstenite's write buffer, not yet flushed to the socket
    let mut unflushed = false;
    loop {
        let next = if unflushed {
            // Only flush once the socket has nothing more for us right now.
            match ws.next().now_or_never() {
                Some(item) => item,
                None => {
                    ws.flush().await?;
                    unflushed = false;
                    ws.next().await
                }
            }
        } else {
            ws.next().await
        };
        match next {
            None => return Ok(()),
            Some(Err(e)) => {
                // tungstenite reports a bad frame but leaves the Close to us
                let code = match &e {
                    Error::Utf8(_) => CloseCode::Invalid,
                    Error::Capacity(_) => CloseCode::Size,
                    Error::Protocol(_) => CloseCode::Protocol,
                    _ => return Err(e),
                };
                let _ = ws
                    .close(Some(CloseFrame {
                        code,
                        reason: "".into(),
                    }))
                    .await;
                return Err(e);
            }
            Some(Ok(msg @ (Message::Text(_) | Message::Binary(_)))) => {
                ws.feed(msg).await?;
                unflushed = true;
            }
            // Ping/Pong/Close: tungstenite queues the Pong or the Close reply itself and
            // writes it out during the next read.
            Some(Ok(_)) => {}
        }
    }
}

async fn run(port: u16) -> std::io::Result<()> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let listener = TcpListener::bind(addr).await?;
    loop {
        match listener.accept().await {
            Ok((tcp, _)) => {
                tokio::spawn(async move {
                    let _ = serve(tcp).await;
                });
            }
            Err(e) => {
                // e.g. EMFILE: keep serving the connections we have
                eprintln!("rust-echo: accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
    }
}

fn main() {
    let port = match parse_port() {
        Ok(p) => p,
        Err(msg) => {
            eprintln!("{msg}");
            std::process::exit(2);
        }
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .expect("tokio runtime");
    if let Err(e) = rt.block_on(run(port)) {
        eprintln!("rust-echo: 127.0.0.1:{port}: {e}");
        std::process::exit(1);
    }
}
