//! A real `mbo serve` process on 127.0.0.1 port 0, and a small SSE reader.
//! Shared by several test binaries, each using part of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures::StreamExt;
use serde_json::Value;

/// `mbo venue-sim ARGS`; returns the child and its WebSocket URL (from its first line).
pub fn venue_sim(args: &[&str]) -> (Child, String) {
    let mut child = Command::new(assert_cmd::cargo::cargo_bin("mbo"))
        .arg("venue-sim")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn mbo venue-sim");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let v: Value =
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("venue-sim printed {line:?}: {e}"));
    (child, v["ws_url"].as_str().unwrap().to_owned())
}

/// An HTTP client. reqwest is built with rustls but no crypto provider chosen (the
/// workspace picks `ring`); plain HTTP still needs one installed.
pub fn http() -> reqwest::Client {
    static INIT: std::sync::Once = std::sync::Once::new();
    INIT.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
    reqwest::Client::new()
}

/// `mbo serve --bind 127.0.0.1:0 --dbn FILE EXTRA...`.
pub fn serve(file: &str, extra: &[&str]) -> Server {
    let mut args = vec!["serve", "--bind", "127.0.0.1:0", "--dbn", file];
    args.extend_from_slice(extra);
    Server::start(&args, &[])
}

/// A running server; killed on drop.
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// Process id.
    pub pid: u32,
    _cwd: tempfile::TempDir,
}

impl Server {
    /// Starts `mbo serve ARGS` in an empty temporary directory (no `.env`, no dashboard),
    /// with `envs`, and waits for its listening line.
    pub fn start(args: &[&str], envs: &[(&str, &str)]) -> Server {
        Self::start_in(tempfile::tempdir().unwrap(), args, envs)
    }

    /// As [`Server::start`], in `cwd`.
    pub fn start_in(cwd: tempfile::TempDir, args: &[&str], envs: &[(&str, &str)]) -> Server {
        let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("mbo"));
        cmd.current_dir(cwd.path())
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        // The environment of the test runner must not leak MBO_* settings into the server.
        for (k, _) in std::env::vars() {
            if k.starts_with("MBO_") || k == "DATABENTO_API_KEY" || k == "DBN_KEY" {
                cmd.env_remove(k);
            }
        }
        cmd.env("MBO_LOG", "warn");
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn mbo");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let base = loop {
            let line = lines.next().expect("mbo exited before listening").unwrap();
            if let Some(rest) = line.strip_prefix("mbo: listening on ") {
                let url = rest.split_whitespace().next().unwrap();
                break url.trim_end_matches('/').to_owned();
            }
        };
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        let pid = child.id();
        Server {
            child,
            base,
            pid,
            _cwd: cwd,
        }
    }

    /// `base + path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Waits until `/health/ready` answers 200.
    pub async fn ready(&self) {
        let client = http();
        for _ in 0..500 {
            if let Ok(r) = client.get(self.url("/health/ready")).send().await {
                if r.status() == 200 {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("server not ready after 5 s");
    }

    /// GET → (status, JSON body).
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let r = http().get(self.url(path)).send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        let v = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("GET {path}: not JSON ({e}): {text}"));
        (status, v)
    }

    /// POST JSON → (status, JSON body).
    pub async fn post(&self, path: &str, body: &str, token: Option<&str>) -> (u16, Value) {
        let mut req = http()
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body.to_owned());
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        let v = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("POST {path}: not JSON ({e}): {text}"));
        (status, v)
    }

    /// The `/metrics` text.
    pub async fn metrics_text(&self) -> String {
        http()
            .get(self.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// A metric's value from `/metrics` (the first sample whose name and labels start with
    /// `prefix`).
    pub async fn metric(&self, prefix: &str) -> Option<f64> {
        self.metrics_text()
            .await
            .lines()
            .filter(|l| !l.starts_with('#'))
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    }

    /// Resident memory, MB.
    pub fn rss_mb(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).unwrap();
        let kb: f64 = status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap();
        kb / 1024.0
    }

    /// SIGKILL: no chance to flush anything.
    pub fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Polls `GET /api/v1/replay` until its `state` is `state` (at most `within`).
    pub async fn wait_state(&self, state: &str, within: Duration) {
        let deadline = std::time::Instant::now() + within;
        loop {
            let (_, st) = self.get("/api/v1/replay").await;
            if st["state"] == state {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "replay not {state} after {within:?}: {st}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Sends SIGTERM and waits for the exit status (at most `within`).
    pub fn terminate(&mut self, within: Duration) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status();
        let deadline = std::time::Instant::now() + within;
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "server still running {within:?} after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One SSE event.
#[derive(Debug, Clone)]
pub struct Event {
    pub id: Option<String>,
    pub event: String,
    pub data: String,
}

impl Event {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data).unwrap_or_else(|e| panic!("{e}: {}", self.data))
    }
}

/// Reads events from an SSE response.
pub struct Sse {
    body: futures::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buf: Vec<u8>,
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
}

impl Sse {
    /// Opens `url` with optional `Last-Event-ID`.
    pub async fn open(url: &str, last_event_id: Option<&str>) -> Sse {
        let mut req = http().get(url);
        if let Some(id) = last_event_id {
            req = req.header("last-event-id", id);
        }
        let r = req.send().await.unwrap();
        Sse {
            status: r.status().as_u16(),
            headers: r.headers().clone(),
            body: r.bytes_stream().boxed(),
            buf: Vec::new(),
        }
    }

    /// The next event (comments skipped), or `None` at the end or after `timeout`.
    pub async fn next(&mut self, timeout: Duration) -> Option<Event> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(end) = find(&self.buf, b"\n\n") {
                let block: Vec<u8> = self.buf.drain(..end + 2).collect();
                if let Some(ev) = parse_block(&block[..end]) {
                    return Some(ev);
                }
                continue;
            }
            let chunk = tokio::time::timeout_at(deadline, self.body.next())
                .await
                .ok()??;
            self.buf.extend_from_slice(&chunk.ok()?);
        }
    }

    /// The next event named `name`, skipping others.
    pub async fn next_named(&mut self, name: &str, timeout: Duration) -> Option<Event> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let ev = self.next(left).await?;
            if ev.event == name {
                return Some(ev);
            }
        }
    }
}

/// Parses one SSE block (without its blank line); `None` for a comment-only block.
pub fn parse_block(block: &[u8]) -> Option<Event> {
    let text = std::str::from_utf8(block).expect("SSE is UTF-8");
    let mut ev = Event {
        id: None,
        event: "message".into(),
        data: String::new(),
    };
    let mut any = false;
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("id: ") {
            ev.id = Some(v.to_owned());
            any = true;
        } else if let Some(v) = line.strip_prefix("event: ") {
            ev.event = v.to_owned();
            any = true;
        } else if let Some(v) = line.strip_prefix("data: ") {
            ev.data.push_str(v);
            any = true;
        }
    }
    any.then_some(ev)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// `mbo export-book FILE --depth D`, by event index.
pub fn export_book(file: &str, depth: u32) -> std::collections::HashMap<u64, Value> {
    let out = Command::new(assert_cmd::cargo::cargo_bin("mbo"))
        .args(["export-book", file, "--depth", &depth.to_string()])
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (v["i"].as_u64().unwrap(), v)
        })
        .collect()
}

/// The levels of a server book object as export-book triples `[price, size, count]`.
pub fn levels(book: &Value, side: &str) -> Vec<[i64; 3]> {
    book[side]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            [
                l["price"].as_i64().unwrap(),
                l["size"].as_i64().unwrap(),
                l["orders"].as_i64().unwrap(),
            ]
        })
        .collect()
}

/// The levels of an export-book line.
pub fn export_levels(line: &Value, side: &str) -> Vec<[i64; 3]> {
    line[side]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let a = l.as_array().unwrap();
            [
                a[0].as_i64().unwrap(),
                a[1].as_i64().unwrap(),
                a[2].as_i64().unwrap(),
            ]
        })
        .collect()
}
