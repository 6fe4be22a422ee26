#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! `mbo fetch` end to end: the real binary against the loopback Databento gateway of the feed
//! crate's tests, serving the real `../shared/data/mbo/CLX5_mbo.dbn`.

#[path = "../../feed/tests/gateway/mod.rs"]
mod gateway;

use std::path::Path;
use std::process::Output;

use assert_cmd::Command;
use gateway::{checksum, decode_file, DataFile, Gateway, GatewayConfig, BAD_KEY, KEY};

/// The gateway on its own runtime (fields drop in order: the gateway before its runtime).
struct Env {
    gw: Gateway,
    dir: tempfile::TempDir,
    file: DataFile,
    _runtime: tokio::runtime::Runtime,
}

impl Env {
    fn new(config: GatewayConfig) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let gw = runtime.block_on(Gateway::start(config));
        Self {
            _runtime: runtime,
            gw,
            dir: tempfile::tempdir().unwrap(),
            file: DataFile::clx5(),
        }
    }

    fn cache(&self) -> std::path::PathBuf {
        self.dir.path().join("cache")
    }

    /// `mbo fetch` for the whole file, no key in the environment, the cache in the temp dir.
    fn fetch(&self, extra: &[&str]) -> Command {
        let mut cmd = Command::cargo_bin("mbo").unwrap();
        cmd.env_remove("DATABENTO_API_KEY")
            .env_remove("DBN_KEY")
            .env("MBO_CACHE_DIR", self.cache())
            .args(["fetch", "--dataset", "GLBX.MDP3", "--symbols", "CLX5"])
            .args(["--start", &self.file.metadata.start.to_string()])
            .args(["--end", &self.file.metadata.end.unwrap().get().to_string()])
            .args(["--base-url", &self.gw.base_url()])
            .args(extra);
        cmd
    }

    fn http_count(&self) -> usize {
        self.gw.stats.http_count()
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A failure: exit code 2 and one line on standard error.
fn assert_fails_with_one_line(out: &Output) -> String {
    assert_eq!(out.status.code(), Some(2), "stderr: {}", stderr(out));
    let err = stderr(out);
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    assert!(err.starts_with("mbo: error: "), "{err}");
    err
}

fn assert_holds_clx5(path: &Path, file: &DataFile) {
    let (metadata, records) = decode_file(path);
    assert_eq!(metadata.dataset, "GLBX.MDP3");
    assert_eq!(records.len(), file.records.len());
    assert_eq!(checksum(&records), checksum(&file.records));
    assert!(records == file.records);
}

#[test]
fn fetch_writes_the_file_then_serves_it_from_the_cache() {
    let env = Env::new(GatewayConfig::default());
    let out = env.dir.path().join("clx5.dbn.zst");
    let result = env
        .fetch(&["--out", out.to_str().unwrap()])
        .env("DATABENTO_API_KEY", KEY)
        .output()
        .unwrap();
    assert!(result.status.success(), "stderr: {}", stderr(&result));
    assert_eq!(
        String::from_utf8_lossy(&result.stdout).trim(),
        out.to_str().unwrap()
    );
    let summary = stderr(&result);
    assert!(
        summary.contains("38212 records") && summary.contains("$0.42"),
        "{summary}"
    );
    assert!(!summary.contains(KEY), "{summary}");
    assert_holds_clx5(&out, &env.file);
    assert_eq!(env.http_count(), 2);

    // Again, now with the older variable only, into another file: no request at all.
    let again = env.dir.path().join("again.dbn.zst");
    let result = env
        .fetch(&["--out", again.to_str().unwrap()])
        .env("DBN_KEY", KEY)
        .output()
        .unwrap();
    assert!(result.status.success(), "stderr: {}", stderr(&result));
    assert!(
        stderr(&result).contains("from the cache"),
        "{}",
        stderr(&result)
    );
    assert_eq!(env.http_count(), 2, "a cache hit makes no request");
    assert_eq!(std::fs::read(&again).unwrap(), std::fs::read(&out).unwrap());
}

#[test]
fn the_older_dbn_key_variable_is_accepted() {
    let env = Env::new(GatewayConfig::default());
    let result = env
        .fetch(&["--quiet"])
        .env("DBN_KEY", KEY)
        .output()
        .unwrap();
    assert!(result.status.success(), "stderr: {}", stderr(&result));
    assert!(stderr(&result).is_empty(), "quiet: {}", stderr(&result));
    let path = String::from_utf8_lossy(&result.stdout).trim().to_owned();
    assert!(path.starts_with(env.cache().to_str().unwrap()), "{path}");
    assert_holds_clx5(Path::new(&path), &env.file);
}

#[test]
fn no_key_says_how_to_set_one() {
    let env = Env::new(GatewayConfig::default());
    let result = env.fetch(&[]).output().unwrap();
    let err = assert_fails_with_one_line(&result);
    assert!(err.contains("DATABENTO_API_KEY"), "{err}");
    assert_eq!(env.http_count(), 0);
}

#[test]
fn a_bad_key_is_a_clear_auth_error() {
    let env = Env::new(GatewayConfig::default());
    let out = env.dir.path().join("out.dbn.zst");
    let result = env
        .fetch(&["--out", out.to_str().unwrap()])
        .env("DATABENTO_API_KEY", BAD_KEY)
        .output()
        .unwrap();
    let err = assert_fails_with_one_line(&result);
    assert!(
        err.contains("authentication failed") && err.contains("DATABENTO_API_KEY"),
        "{err}"
    );
    assert!(!err.contains(BAD_KEY), "{err}");
    assert!(!out.exists());
}

#[test]
fn a_cost_above_the_limit_needs_yes() {
    let env = Env::new(GatewayConfig {
        cost_usd: 7.25,
        ..GatewayConfig::default()
    });
    let out = env.dir.path().join("out.dbn.zst");
    let refused = env
        .fetch(&["--out", out.to_str().unwrap()])
        .env("DATABENTO_API_KEY", KEY)
        .output()
        .unwrap();
    let err = assert_fails_with_one_line(&refused);
    assert!(err.contains("$7.25") && err.contains("--yes"), "{err}");
    assert!(!out.exists());
    assert_eq!(env.http_count(), 1, "only the cost estimate");

    let raised = env
        .fetch(&["--max-cost", "10", "--quiet"])
        .env("DATABENTO_API_KEY", KEY)
        .output()
        .unwrap();
    assert!(raised.status.success(), "stderr: {}", stderr(&raised));

    let confirmed = env
        .fetch(&["--yes", "--out", out.to_str().unwrap()])
        .env("DATABENTO_API_KEY", KEY)
        .env("MBO_CACHE_DIR", env.dir.path().join("other-cache"))
        .output()
        .unwrap();
    assert!(confirmed.status.success(), "stderr: {}", stderr(&confirmed));
    assert_holds_clx5(&out, &env.file);
}

#[test]
fn bad_arguments_are_one_line_errors() {
    let env = Env::new(GatewayConfig::default());
    for (args, expect) in [
        (&["--stype", "nonsense"][..], "--stype"),
        (&["--max-cost=-1"][..], "cost limit"),
    ] {
        let result = env
            .fetch(args)
            .env("DATABENTO_API_KEY", KEY)
            .output()
            .unwrap();
        let err = assert_fails_with_one_line(&result);
        assert!(err.contains(expect), "{args:?}: {err}");
    }
    let result = Command::cargo_bin("mbo")
        .unwrap()
        .args(["fetch", "--dataset", "GLBX.MDP3", "--symbols", "CLX5"])
        .args(["--start", "2025-09-24T22:00", "--end", "2025-09-24T19:30"])
        .env("DATABENTO_API_KEY", KEY)
        .env("MBO_CACHE_DIR", env.cache())
        .args(["--base-url", &env.gw.base_url()])
        .output()
        .unwrap();
    let err = assert_fails_with_one_line(&result);
    assert!(err.contains("before end"), "{err}");
    assert_eq!(env.http_count(), 0);
}
