//! Interop client on the soketto crate, for the deflate scenario only (tungstenite, the Rust
//! client of the other scenarios, has no permessage-deflate).
//!
//!     soketto-client [--ca FILE] URL deflate
//!
//! soketto speaks WebSocket over any byte stream; for a wss:// URL that stream is a native-tls
//! one (OpenSSL), which verifies the certificate chain and host name, trusting the CA
//! certificates in FILE (PEM) besides the system's.
//!
//! Prints "PASS deflate" or "FAIL deflate: why" and exits 0 when it passed, 1 when it failed,
//! 2 on a usage error. The payloads are the same in every interop client
//! (tests/interop/README.md).

use std::io::{self, Read, Write};
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

/// The connection under soketto: plain TCP for ws://, TLS over it for wss://.
enum Stream {
    Plain(TcpStream),
    Tls(Box<native_tls::TlsStream<TcpStream>>),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

type Socket = AllowStdIo<Stream>;

/// Whether the URL is wss://, its host:port and its path.
fn split_url(url: &str) -> Result<(bool, String, String), String> {
    let (tls, rest) = match (url.strip_prefix("ws://"), url.strip_prefix("wss://")) {
        (Some(rest), _) => (false, rest),
        (_, Some(rest)) => (true, rest),
        _ => return Err("only ws:// and wss:// URLs".into()),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    Ok((tls, authority.to_string(), path.to_string()))
}

/// The TLS connector of wss:// URLs, trusting the CA certificates of a PEM file as well.
fn tls_connector(ca_file: Option<&str>) -> Result<native_tls::TlsConnector, String> {
    let mut builder = native_tls::TlsConnector::builder();
    if let Some(path) = ca_file {
        let pem = std::fs::read(path).map_err(|e| format!("--ca {path}: {e}"))?;
        let ca =
            native_tls::Certificate::from_pem(&pem).map_err(|e| format!("--ca {path}: {e}"))?;
        builder.add_root_certificate(ca);
    }
    builder.build().map_err(|e| e.to_string())
}

/// Connects with permessage-deflate offered; fails unless the server accepted it.
async fn connect(
    url: &str,
    tls: &native_tls::TlsConnector,
) -> Result<(Sender<Socket>, Receiver<Socket>), String> {
    let (secure, authority, path) = split_url(url)?;
    let tcp = TcpStream::connect(&authority).map_err(|e| format!("connect: {e}"))?;
    // Every blocking read and write gives up after TIMEOUT.
    tcp.set_read_timeout(Some(TIMEOUT))
        .map_err(|e| e.to_string())?;
    tcp.set_write_timeout(Some(TIMEOUT))
        .map_err(|e| e.to_string())?;
    tcp.set_nodelay(true).map_err(|e| e.to_string())?;
    let stream = if secure {
        // the name the certificate must carry: the host without the port
        let host = authority
            .rsplit_once(':')
            .map_or(authority.as_str(), |(h, _)| h);
        let host = host.trim_matches(['[', ']']);
        let tls = tls.connect(host, tcp).map_err(|e| format!("TLS: {e}"))?;
        Stream::Tls(Box::new(tls))
    } else {
        Stream::Plain(tcp)
    };
    let mut client = Client::new(AllowStdIo::new(stream), &authority, &path);
    client.add_extension(Box::new(Deflate::new(Mode::Client)));
    match client
        .handshake()
        .await
        .map_err(|e| format!("handshake: {e}"))?
    {
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
    let kind = rx
        .receive_data(&mut got)
        .await
        .map_err(|e| format!("reading the echo: {e}"))?;
    match (kind, text) {
        (Data::Text(_), true) | (Data::Binary(_), false) => {}
        (k, _) => {
            return Err(format!(
                "echo is {k:?}, sent {}",
                if text { "text" } else { "binary" }
            ))
        }
    }
    if got != want {
        return Err(format!(
            "echo of {} bytes differs from the {} sent",
            got.len(),
            want.len()
        ));
    }
    Ok(())
}

async fn deflate(url: &str, tls: &native_tls::TlsConnector) -> Result<(), String> {
    let (mut tx, mut rx) = connect(url, tls).await?;
    let text = DEFLATE_TEXT.repeat(64);
    let binary: Vec<u8> = (0..16).flat_map(|_| 0..=255u8).collect();
    tx.send_text(&text).await.map_err(|e| e.to_string())?;
    tx.flush().await.map_err(|e| e.to_string())?;
    expect_echo(&mut rx, true, text.as_bytes()).await?;
    tx.send_binary(&binary).await.map_err(|e| e.to_string())?;
    tx.flush().await.map_err(|e| e.to_string())?;
    expect_echo(&mut rx, false, &binary).await?;
    tx.close()
        .await
        .map_err(|e| format!("sending Close: {e}"))?; // always code 1000
    let mut buf = Vec::new();
    loop {
        match rx
            .receive(&mut buf)
            .await
            .map_err(|e| format!("no Close from the server: {e}"))?
        {
            Incoming::Closed(CloseReason { code: 1000, .. }) => return Ok(()),
            Incoming::Closed(r) => return Err(format!("server answered Close 1000 with {r:?}")),
            Incoming::Pong(_) => continue,
            Incoming::Data(d) => {
                return Err(format!("message {d:?} instead of the server's Close"))
            }
        }
    }
}

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut ca_file = None;
    if args.len() > 2 && args[0] == "--ca" {
        ca_file = Some(args[1].clone());
        args.drain(..2);
    }
    let tls = match tls_connector(ca_file.as_deref()) {
        Ok(tls) => tls,
        Err(e) => {
            eprintln!("soketto-client: {e}");
            return ExitCode::from(2);
        }
    };
    match args.as_slice() {
        [v] if v == "--version" => {
            println!("soketto {VERSION}");
            ExitCode::SUCCESS
        }
        [url, s] if s == "deflate" || s == "all" => match block_on(deflate(url, &tls)) {
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
            eprintln!("usage: soketto-client [--ca FILE] URL deflate");
            ExitCode::from(2)
        }
    }
}
