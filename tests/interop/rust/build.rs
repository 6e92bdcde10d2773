// Puts the tungstenite version that Cargo.lock resolved into TUNGSTENITE_VERSION, so that
// `rust-client --version` names the library actually built in.
use std::{env, fs, path::Path};

fn main() {
    let lock = Path::new(&env::var("CARGO_MANIFEST_DIR").unwrap()).join("Cargo.lock");
    println!("cargo:rerun-if-changed={}", lock.display());
    let text = fs::read_to_string(&lock).unwrap_or_default();
    let mut lines = text.lines();
    let mut version = "unknown";
    while let Some(line) = lines.next() {
        if line.trim() == "name = \"tungstenite\"" {
            if let Some(v) = lines
                .next()
                .and_then(|l| l.trim().strip_prefix("version = "))
            {
                version = v.trim_matches('"');
            }
            break;
        }
    }
    println!("cargo:rustc-env=TUNGSTENITE_VERSION={version}");
}
