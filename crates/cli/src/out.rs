//! Where the CLI's output goes: standard output for every command, and
//! the files it writes, which hold plaintext and are its owner's alone.
//!
//! Standard output: Rust ignores SIGPIPE, so a reader
//! that goes away (`backchannel log ... | head -1`) turns the next write
//! into an error, which `outln!` answers with a panic. Every command
//! prints through `out!` and `outln!` instead: a closed pipe ends the process at once with status 0 and no
//! message, as a Unix filter killed by SIGPIPE would, except that it is not
//! counted as a failure. Any other write error ends it with status 1.
//!
//! Every command prints only what it has already done (or read), so ending
//! there loses nothing: the store's transactions are committed, and the
//! lock is released by the operating system.

use std::io::Write as _;

/// Writes to standard output; a closed pipe ends the process quietly.
pub fn write(args: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|()| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: cannot write to standard output: {e}");
        std::process::exit(1);
    }
}

/// `out!` through [`write`].
macro_rules! out {
    ($($arg:tt)*) => { $crate::out::write(format_args!($($arg)*)) };
}

/// `outln!` through [`write`].
macro_rules! outln {
    () => { $crate::out::write(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::out::write(format_args!("{}\n", format_args!($($arg)*))) };
}

/// Writes `text` to `path`, readable and writable by its owner only (0600,
/// whatever the umask; an existing file is narrowed to 0600 first).
pub fn write_private(path: &std::path::Path, text: &str) -> anyhow::Result<()> {
    use anyhow::Context as _;
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    let mut file = std::fs::File::options()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))
        .and_then(|()| file.set_len(0))
        .and_then(|()| file.write_all(text.as_bytes()))
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))
}
