//! One writer per store: the process that opens a store to change it holds
//! an exclusive lock on a file beside it for as long as the client is open.
//! A second process either hands its work to the running one (over a Unix
//! socket beside the store, mode 0600) or waits for the lock, so no two
//! processes ever advance the same Olm session or sequence number.

use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::error::ClientError;

/// The held lock of one store; released when dropped.
#[derive(Debug)]
pub struct StoreLock {
    _file: File,
}

/// `store` with `suffix` appended (`.lock`, `.sock`).
pub fn sibling(store: &Path, suffix: &str) -> PathBuf {
    let mut s = store.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

fn open_lock_file(store: &Path) -> Result<File, ClientError> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let path = sibling(store, ".lock");
    File::options()
        .mode(0o600)
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| ClientError::Input(format!("cannot open {}: {e}", path.display())))
}

impl StoreLock {
    /// Takes the lock now, or fails with [`ClientError::Busy`].
    pub fn acquire(store: &Path) -> Result<StoreLock, ClientError> {
        let file = open_lock_file(store)?;
        match file.try_lock() {
            Ok(()) => Ok(StoreLock { _file: file }),
            Err(TryLockError::WouldBlock) => Err(ClientError::Busy(store.display().to_string())),
            Err(TryLockError::Error(e)) => {
                Err(ClientError::Input(format!("cannot lock the store: {e}")))
            }
        }
    }

    /// Waits until the running writer lets go.
    pub fn wait(store: &Path) -> Result<StoreLock, ClientError> {
        let file = open_lock_file(store)?;
        file.lock()
            .map_err(|e| ClientError::Input(format!("cannot lock the store: {e}")))?;
        Ok(StoreLock { _file: file })
    }
}

/// Hands one line of work (JSON) to the writer listening beside `store`
/// and returns its one-line answer; `None` if nobody listens.
pub async fn hand_over(
    store: &Path,
    work: &serde_json::Value,
) -> Result<Option<serde_json::Value>, ClientError> {
    let Ok(stream) = tokio::net::UnixStream::connect(sibling(store, ".sock")).await else {
        return Ok(None);
    };
    let io =
        |e: std::io::Error| ClientError::Input(format!("handing work to the running writer: {e}"));
    let (read, mut write) = stream.into_split();
    let mut line = serde_json::to_vec(work).map_err(|e| ClientError::Input(e.to_string()))?;
    line.push(b'\n');
    write.write_all(&line).await.map_err(io)?;
    let mut answer = String::new();
    BufReader::new(read)
        .read_line(&mut answer)
        .await
        .map_err(io)?;
    serde_json::from_str(&answer)
        .map(Some)
        .map_err(|_| ClientError::Input("the running writer answered something unreadable".into()))
}

/// Listens for handed-over work beside `store` (the writer does this).
pub fn listen(store: &Path) -> Result<tokio::net::UnixListener, ClientError> {
    let sock = sibling(store, ".sock");
    let _ = std::fs::remove_file(&sock);
    let listener = tokio::net::UnixListener::bind(&sock)
        .map_err(|e| ClientError::Input(format!("cannot listen on {}: {e}", sock.display())))?;
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| ClientError::Input(format!("cannot restrict {}: {e}", sock.display())))?;
    Ok(listener)
}

/// Removes the socket when the writer ends.
pub fn unlisten(store: &Path) {
    let _ = std::fs::remove_file(sibling(store, ".sock"));
}
