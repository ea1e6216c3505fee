//! What the demo's process tests share: starting the demo server binary and learning its
//! address.
#![allow(dead_code)]

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;

/// How long a test waits for a process. A liveness bound, not a speed assertion.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// A running demo server.
pub struct DemoServer {
    pub child: Child,
    /// `127.0.0.1:<port>`, as the server printed it.
    pub addr: String,
    /// Every later line of its stderr, read all along so that it never blocks on it.
    pub log: JoinHandle<Vec<String>>,
}

/// Starts `server` (the demo server binary with the caller's options and environment) on
/// 127.0.0.1 port 0 and waits until it listens.
pub async fn start_server(server: &mut Command) -> DemoServer {
    let mut child = server
        .args(["--addr", "127.0.0.1:0"])
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = tokio::time::timeout(PATIENCE, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(rest) = line.strip_prefix("echo server on ") {
                return rest.split_whitespace().next().unwrap().to_owned();
            }
        }
        panic!("the server exited before it listened");
    })
    .await
    .unwrap();
    let log = tokio::spawn(async move {
        let mut all = Vec::new();
        while let Ok(Some(line)) = lines.next_line().await {
            all.push(line);
        }
        all
    });
    DemoServer { child, addr, log }
}
