//! Interop client on the soketto crate, for the deflate scenario only (tungstenite, the Rust
//! client of the other scenarios, has no permessage-deflate).
//!
//!     soketto-client URL deflate
//!
//! Prints "PASS deflate" or "FAIL deflate: why" and exits 0 when it passed, 1 when it failed,
//! 2 on a usage error. The payloads are the same in every interop client
//! (tests/interop/README.md).

use std::net::TcpStream;
use std::process::ExitCode;
use std::time::Duration;

use futures::executor::block_on;
use futures::io::AllowStdIo;
use soketto::connection::{CloseReason, Receiver, Sender};
use soketto::extension::deflate::Deflate;
use soketto::handshake::{Client, ServerResponse};
use soketto::{Data, Incoming, Mode};

const TIMEOUT: Duration = Duration::from_secs(5);
const DEFLATE_TEXT: &str = "interop deflate: h\u{e9}llo w\u{f6}rld \u{20ac} \u{1F600} ";
const VERSION: &str = "0.8.1"; // pinned in Cargo.toml

type Socket = AllowStdIo<TcpStream>;

/// host:port and path of a ws:// URL.
fn split_url(url: &str) -> Result<(String, String), String> {
    let rest = url.strip_prefix("ws://").ok_or("only ws:// URLs")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    Ok((authority.to_string(), path.to_string()))
}

/// Connects with permessage-deflate offered; fails unless the server accepted it.
async fn connect(url: &str) -> Result<(Sender<Socket>, Receiver<Socket>), String> {
    let (authority, path) = split_url(url)?;
    let stream = TcpStream::connect(&authority).map_err(|e| format!("connect: {e}"))?;
    // Every blocking read and write gives up after TIMEOUT.
    stream.set_read_timeout(Some(TIMEOUT)).map_err(|e| e.to_string())?;
    stream.set_write_timeout(Some(TIMEOUT)).map_err(|e| e.to_string())?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let mut client = Client::new(AllowStdIo::new(stream), &authority, &path);
    client.add_extension(Box::new(Deflate::new(Mode::Client)));
    match client.handshake().await.map_err(|e| format!("handshake: {e}"))? {
        ServerResponse::Accepted { .. } => {}
        other => return Err(format!("handshake refused: {other:?}")),
    }
    let extensions: Vec<_> = client.drain_extensions().collect();
    if !extensions.iter().any(|e| e.is_enabled()) {
        return Err("permessage-deflate not negotiated".into());
    }
    let mut builder = client.into_builder();
    builder.add_extensions(extensions);
    Ok(builder.finish())
}

async fn expect_echo(rx: &mut Receiver<Socket>, text: bool, want: &[u8]) -> Result<(), String> {
    let mut got = Vec::new();
    let kind = rx.receive_data(&mut got).await.map_err(|e| format!("reading the echo: {e}"))?;
    match (kind, text) {
        (Data::Text(_), true) | (Data::Binary(_), false) => {}
        (k, _) => return Err(format!("echo is {k:?}, sent {}", if text { "text" } else { "binary" })),
    }
    if got != want {
        return Err(format!("echo of {} bytes differs from the {} sent", got.len(), want.len()));
    }
    Ok(())
}

async fn deflate(url: &str) -> Result<(), String> {
    let (mut tx, mut rx) = connect(url).await?;
    let text = DEFLATE_TEXT.repeat(64);
    let binary: Vec<u8> = (0..16).flat_map(|_| 0..=255u8).collect();
    tx.send_text(&text).await.map_err(|e| e.to_string())?;
    tx.flush().await.map_err(|e| e.to_string())?;
    expect_echo(&mut rx, true, text.as_bytes()).await?;
    tx.send_binary(&binary).await.map_err(|e| e.to_string())?;
    tx.flush().await.map_err(|e| e.to_string())?;
    expect_echo(&mut rx, false, &binary).await?;
    tx.close().await.map_err(|e| format!("sending Close: {e}"))?; // always code 1000
    let mut buf = Vec::new();
    loop {
        match rx.receive(&mut buf).await.map_err(|e| format!("no Close from the server: {e}"))? {
            Incoming::Closed(CloseReason { code: 1000, .. }) => return Ok(()),
            Incoming::Closed(r) => return Err(format!("server answered Close 1000 with {r:?}")),
            Incoming::Pong(_) => continue,
            Incoming::Data(d) => return Err(format!("message {d:?} instead of the server's Close")),
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.as_slice() {
        [v] if v == "--version" => {
            println!("soketto {VERSION}");
            ExitCode::SUCCESS
        }
        [url, s] if s == "deflate" || s == "all" => match block_on(deflate(url)) {
            Ok(()) => {
                println!("PASS deflate");
                ExitCode::SUCCESS
            }
            Err(e) => {
                println!("FAIL deflate: {e}");
                ExitCode::from(1)
            }
        },
        _ => {
            eprintln!("usage: soketto-client URL deflate");
            ExitCode::from(2)
        }
    }
}
