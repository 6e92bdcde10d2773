//! Interop client on the tungstenite crate (its blocking API).
//!
//!     rust-client [--ca FILE] URL SCENARIO...  (SCENARIO: text, binary, fragmented, ping,
//!                                                close, all)
//!
//! A wss:// URL goes through tungstenite's native-tls support: the certificate chain and host
//! name are verified, trusting the CA certificates in FILE (PEM) besides the system's.
//!
//! Prints one line per scenario, "PASS name" or "FAIL name: why", and exits 0 when every
//! scenario passed, 1 when one failed, 2 on a usage error. The payloads are the same in every
//! interop client (tests/interop/README.md).

use std::net::TcpStream;
use std::process::ExitCode;
use std::time::Duration;

use tungstenite::client::IntoClientRequest;
use tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tungstenite::protocol::frame::{CloseFrame, Frame};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Connector, Message, WebSocket};

const TIMEOUT: Duration = Duration::from_secs(5);
const TEXT: &str = "interop text: h\u{e9}llo w\u{f6}rld \u{20ac} \u{1F600}";
const FRAGMENTS: [&str; 3] = [
    "frag-1 \u{e9}\u{e9}|",
    "frag-2 \u{20ac}!|",
    "frag-3 \u{1F600}|",
];
const PING: &[u8] = b"interop-ping\x00\xff\x80";
const CLOSE_CODE: u16 = 4001;
const CLOSE_REASON: &str = "interop-bye";

type Ws = WebSocket<MaybeTlsStream<TcpStream>>;
type Outcome = Result<(), String>;
type Scenario = fn(&mut Ws) -> Outcome;

fn binary_payload() -> Vec<u8> {
    (0..=255u8).collect()
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

fn connect(url: &str, tls: &native_tls::TlsConnector) -> Result<Ws, String> {
    let request = url
        .into_client_request()
        .map_err(|e| format!("bad URL: {e}"))?;
    let host = request
        .uri()
        .host()
        .ok_or("URL without a host")?
        .trim_matches(['[', ']']);
    let port = request
        .uri()
        .port_u16()
        .unwrap_or(if request.uri().scheme_str() == Some("wss") {
            443
        } else {
            80
        });
    let stream = TcpStream::connect((host, port)).map_err(|e| format!("connect: {e}"))?;
    // Every blocking read and write gives up after TIMEOUT, so a silent server fails the
    // scenario instead of hanging it.
    stream
        .set_read_timeout(Some(TIMEOUT))
        .map_err(|e| e.to_string())?;
    stream
        .set_write_timeout(Some(TIMEOUT))
        .map_err(|e| e.to_string())?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    // ws:// stays plain; wss:// does the TLS handshake with the connector, then the upgrade
    let connector = Some(Connector::NativeTls(tls.clone()));
    let (ws, _) = tungstenite::client_tls_with_config(request, stream, None, connector)
        .map_err(|e| format!("handshake: {e}"))?;
    Ok(ws)
}

fn send(ws: &mut Ws, msg: Message) -> Outcome {
    ws.send(msg).map_err(|e| format!("send: {e}"))
}

/// The next message; tungstenite hands Ping, Pong and Close frames over as messages too.
fn read(ws: &mut Ws) -> Result<Message, String> {
    ws.read().map_err(|e| format!("read: {e}"))
}

fn expect_echo(ws: &mut Ws, want: &Message) -> Outcome {
    let got = read(ws)?;
    match (&got, want) {
        _ if got == *want => Ok(()),
        (Message::Text(_), Message::Text(_)) | (Message::Binary(_), Message::Binary(_)) => {
            Err(format!("echo {got:?} differs from {want:?}"))
        }
        _ => Err(format!(
            "{got:?} instead of an echo of the same type as {want:?}"
        )),
    }
}

/// Sends a Close with the code and reads until the server's Close, whose code must be the same.
fn close_expecting(ws: &mut Ws, code: u16, reason: &str) -> Outcome {
    let frame = CloseFrame {
        code: CloseCode::from(code),
        reason: reason.to_owned().into(),
    };
    ws.close(Some(frame))
        .map_err(|e| format!("sending Close: {e}"))?;
    match read(ws)? {
        Message::Close(Some(cf)) if u16::from(cf.code) == code => Ok(()),
        Message::Close(Some(cf)) => Err(format!(
            "server answered Close {code} with {} (reason {:?})",
            u16::from(cf.code),
            cf.reason.as_str()
        )),
        Message::Close(None) => Err(format!("server answered Close {code} with no code")),
        other => Err(format!("{other:?} instead of the server's Close")),
    }
}

fn scenario_text(ws: &mut Ws) -> Outcome {
    send(ws, Message::text(TEXT))?;
    expect_echo(ws, &Message::text(TEXT))?;
    close_expecting(ws, 1000, "")
}

fn scenario_binary(ws: &mut Ws) -> Outcome {
    send(ws, Message::binary(binary_payload()))?;
    expect_echo(ws, &Message::binary(binary_payload()))?;
    close_expecting(ws, 1000, "")
}

/// tungstenite's Message API sends whole messages only; its raw-frame variant
/// (Message::Frame) sends each fragment as its own frame, masked like any client frame.
fn scenario_fragmented(ws: &mut Ws) -> Outcome {
    for (i, part) in FRAGMENTS.iter().enumerate() {
        let opcode = if i == 0 { Data::Text } else { Data::Continue };
        let last = i == FRAGMENTS.len() - 1;
        send(
            ws,
            Message::Frame(Frame::message(
                part.as_bytes().to_vec(),
                OpCode::Data(opcode),
                last,
            )),
        )?;
    }
    expect_echo(ws, &Message::text(FRAGMENTS.concat()))?;
    close_expecting(ws, 1000, "")
}

fn scenario_ping(ws: &mut Ws) -> Outcome {
    send(ws, Message::Ping(PING.to_vec().into()))?;
    match read(ws)? {
        Message::Pong(p) if p.as_ref() == PING => {}
        Message::Pong(p) => {
            return Err(format!(
                "pong payload {:?} differs from ping payload {PING:?}",
                p.as_ref()
            ))
        }
        other => return Err(format!("{other:?} instead of a Pong")),
    }
    close_expecting(ws, 1000, "")
}

fn scenario_close(ws: &mut Ws) -> Outcome {
    close_expecting(ws, CLOSE_CODE, CLOSE_REASON)
}

const SCENARIOS: [(&str, Scenario); 5] = [
    ("text", scenario_text),
    ("binary", scenario_binary),
    ("fragmented", scenario_fragmented),
    ("ping", scenario_ping),
    ("close", scenario_close),
];

fn find(name: &str) -> Option<Scenario> {
    SCENARIOS.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
}

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() == 1 && args[0] == "--version" {
        println!("tungstenite {}", env!("TUNGSTENITE_VERSION"));
        return ExitCode::SUCCESS;
    }
    let mut ca_file = None;
    if args.len() > 2 && args[0] == "--ca" {
        ca_file = Some(args[1].clone());
        args.drain(..2);
    }
    let tls = match tls_connector(ca_file.as_deref()) {
        Ok(tls) => tls,
        Err(e) => {
            eprintln!("rust-client: {e}");
            return ExitCode::from(2);
        }
    };
    let names: Vec<&str> = match args.get(1).map(String::as_str) {
        Some("all") if args.len() == 2 => SCENARIOS.iter().map(|(n, _)| *n).collect(),
        _ => args.iter().skip(1).map(String::as_str).collect(),
    };
    if names.is_empty() || names.iter().any(|n| find(n).is_none()) {
        eprintln!(
            "usage: rust-client [--ca FILE] URL SCENARIO... (text, binary, fragmented, ping, close or all)"
        );
        return ExitCode::from(2);
    }
    let mut failed = false;
    for name in names {
        let outcome = connect(&args[0], &tls).and_then(|mut ws| find(name).unwrap()(&mut ws));
        match outcome {
            Ok(()) => println!("PASS {name}"),
            Err(why) => {
                println!("FAIL {name}: {why}");
                failed = true;
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
