//! Process memory and CPU from `/proc` (Linux): the server's resident memory, sampled during
//! the run, and the load tester's own cost (to tell a slow server from a saturated client).

use std::path::PathBuf;

use anyhow::{Context, Result};
use serde::Serialize;

/// Reads one process's `VmRSS`.
#[derive(Debug, Clone)]
pub struct RssProbe {
    path: PathBuf,
}

impl RssProbe {
    /// Checks now that the process exists and shows its memory, so a wrong pid fails before
    /// the run rather than reporting nothing after it.
    ///
    /// # Errors
    /// No readable `/proc/PID/status`, or no `VmRSS` in it (a kernel thread, a zombie).
    pub fn open(pid: u32) -> Result<Self> {
        let probe = Self {
            path: PathBuf::from(format!("/proc/{pid}/status")),
        };
        let text = std::fs::read_to_string(&probe.path).with_context(|| {
            format!(
                "--pid {pid}: cannot read {} (no such process, or not Linux)",
                probe.path.display()
            )
        })?;
        vm_rss_kib(&text)
            .with_context(|| format!("--pid {pid}: no VmRSS in {}", probe.path.display()))?;
        Ok(probe)
    }

    /// The resident set in KiB now; `None` once the process is gone.
    pub fn sample_kib(&self) -> Option<u64> {
        std::fs::read_to_string(&self.path)
            .ok()
            .as_deref()
            .and_then(vm_rss_kib)
    }
}

/// The `VmRSS:   123456 kB` line's number.
fn vm_rss_kib(status: &str) -> Option<u64> {
    status_kib(status, "VmRSS:")
}

/// The number of a `Key:   123456 kB` line of `/proc/PID/status`.
fn status_kib(status: &str, key: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with(key))?;
    let mut words = line.split_whitespace().skip(1);
    let value = words.next()?.parse().ok()?;
    match words.next() {
        Some("kB") | None => Some(value),
        Some(_) => None,
    }
}

/// CPU time (user + system) this process has used, s. `None` off Linux.
pub fn self_cpu_s() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may contain spaces, hence the last ')'):
    // state is field 3, utime and stime fields 14 and 15, in clock ticks.
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    // USER_HZ is 100 on every Linux configuration in use (reading it needs libc).
    Some((utime + stime) as f64 / 100.0)
}

/// This process's peak resident memory (`VmHWM`), MB.
pub fn self_peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status_kib(&status, "VmHWM:").map(kib_to_mb)
}

/// Samples taken so far.
#[derive(Debug, Clone, Copy, Default)]
pub struct RssSamples {
    /// Samples taken.
    pub samples: u64,
    /// Largest, KiB.
    pub max_kib: u64,
    /// Most recent, KiB.
    pub last_kib: u64,
}

impl RssSamples {
    /// Counts one sample.
    pub fn add(&mut self, kib: u64) {
        self.samples += 1;
        self.max_kib = self.max_kib.max(kib);
        self.last_kib = kib;
    }

    /// As reported (MB = MiB, as `top` and `ps` count; `None` without samples).
    pub fn report(&self) -> Option<RssReport> {
        (self.samples > 0).then(|| RssReport {
            max: kib_to_mb(self.max_kib),
            last: kib_to_mb(self.last_kib),
            samples: self.samples,
        })
    }
}

fn kib_to_mb(kib: u64) -> f64 {
    (kib as f64 / 1024.0 * 10.0).round() / 10.0
}

/// The server's memory in the report.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RssReport {
    /// Largest sample, MB.
    pub max: f64,
    /// Last sample, MB.
    pub last: f64,
    /// Samples taken (every 250 ms).
    pub samples: u64,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parses_vm_rss() {
        let status = "Name:\tmbo\nVmPeak:\t  300000 kB\nVmRSS:\t  204800 kB\nThreads:\t4\n";
        assert_eq!(vm_rss_kib(status), Some(204_800));
        assert_eq!(vm_rss_kib("Name: x\n"), None);
        let mut s = RssSamples::default();
        assert!(s.report().is_none());
        s.add(204_800);
        s.add(102_400);
        let r = s.report().unwrap();
        assert_eq!((r.max, r.last, r.samples), (200.0, 100.0, 2));
    }

    #[test]
    fn probes_this_process() {
        let probe = RssProbe::open(std::process::id()).unwrap();
        assert!(probe.sample_kib().unwrap() > 0);
        assert!(RssProbe::open(u32::MAX).is_err());
        assert!(self_peak_rss_mb().unwrap() > 0.0);
        let before = self_cpu_s().unwrap();
        let mut x = 0u64;
        for i in 0..50_000_000u64 {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
        }
        assert!(self_cpu_s().unwrap() >= before, "{x}");
    }
}
