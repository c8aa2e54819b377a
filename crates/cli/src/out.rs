//! Standard output for every command. Rust ignores SIGPIPE, so a reader
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
