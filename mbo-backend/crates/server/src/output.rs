//! Writing command output files so nothing partial pretends to be complete.
//!
//! A regular file is written to a temporary file in the same directory and renamed over the
//! target only when the whole output succeeded. A device or a pipe (`/dev/null`, a FIFO) is
//! written in place: renaming a temporary file over it would replace the device itself.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::Path;

use anyhow::{Context, Result};

/// Creates `out` through `write`, atomically for regular files (see the module docs).
///
/// # Errors
/// A missing directory, a directory as target, or any error of `write` (the target is then
/// left untouched).
pub fn write_atomically<T>(out: &Path, write: impl FnOnce(&File) -> Result<T>) -> Result<T> {
    if let Ok(existing) = std::fs::metadata(out) {
        if existing.is_dir() {
            anyhow::bail!("{}: cannot write output: is a directory", out.display());
        }
        if !existing.is_file() {
            let sink = OpenOptions::new()
                .write(true)
                .open(out)
                .with_context(|| format!("{}: cannot write output", out.display()))?;
            return write(&sink).with_context(|| format!("{}: write failed", out.display()));
        }
    }
    let dir = match out.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        anyhow::bail!(
            "{}: cannot create output: no such file or directory: {}",
            out.display(),
            dir.display()
        );
    }
    let mut builder = tempfile::Builder::new();
    // Ordinary file permissions (tempfile's default is owner-only); the umask still applies.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o644));
    }
    let tmp = builder
        .tempfile_in(dir)
        // Name the user's path, not the temporary file's.
        .map_err(|e| anyhow::anyhow!("{}: cannot create output: {}", out.display(), e.kind()))?;
    let value = write(tmp.as_file()).with_context(|| format!("{}: write failed", out.display()))?;
    tmp.persist(out)
        .with_context(|| format!("{}: cannot write output", out.display()))?;
    Ok(value)
}

/// True when `e` comes from writing to a reader that went away (`| head`): not a failure of
/// the command, since nothing the reader wanted was lost.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}
