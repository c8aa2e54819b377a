//! The sealed store.

use backchannel_client::{Client, KdfParams};
use backchannel_protocol::b64;
use backchannel_testkit::contains;

use crate::{h, Cast, PASS};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_passphrase_is_a_clear_error_and_changes_nothing() {
    let cast = Cast::new().await;
    let path = cast.blue.store_path().to_path_buf();
    let before = std::fs::read(&path).unwrap();
    let err = Client::open_read_only(&path, "wrong").unwrap_err();
    assert_eq!(err.code(), "wrong_passphrase");
    assert!(err.to_string().contains("wrong passphrase"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), before);
    Client::open_read_only(&path, PASS).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_library_allows_one_writer_per_store() {
    let cast = Cast::new().await;
    let path = cast.blue.store_path().to_path_buf();
    // blue's client holds the store: a second writer is refused at once...
    let err = Client::open(&path, PASS).unwrap_err();
    assert_eq!(err.code(), "store_busy", "{err}");
    // ...a reader may look, and cannot write.
    let mut reader = Client::open_read_only(&path, PASS).unwrap();
    assert!(reader.alerts().unwrap().is_empty());
    assert!(!reader
        .dismiss_alert(backchannel_protocol::member::AlertId(1))
        .unwrap());
    // Once the writer is gone, the store opens for writing again.
    let Cast { blue, dir, .. } = cast;
    drop(blue);
    Client::open(&path, PASS).unwrap();
    drop(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_file_holds_no_private_key_and_no_plaintext() {
    let mut cast = Cast::new().await;
    let id = cast.open_channel(false).await;
    let text = "Meet at the usual place, 09:00 UTC.";
    cast.blue.send_text(id, text, None).await.unwrap();
    cast.sync_all().await;
    for c in [&cast.blue, &cast.red] {
        let bytes = std::fs::read(c.store_path()).unwrap();
        assert!(
            !contains(&bytes, text.as_bytes()),
            "{}: plaintext in the store",
            c.me()
        );
        for secret in private_keys(c) {
            assert!(
                !contains(&bytes, &secret),
                "{}: a private key in the store",
                c.me()
            );
            assert!(!contains(&bytes, b64::encode(&secret).as_bytes()));
        }
        // Nothing lies beside the store at rest (no WAL, no journal).
        let dir = c.store_path().parent().unwrap();
        let name = c
            .store_path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .to_string();
        let extra: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().to_string())
            .filter(|n| n.starts_with(&name) && n != &name)
            .collect();
        // Only the writer's lock file, which holds nothing.
        assert_eq!(extra, [format!("{name}.lock")]);
        assert_eq!(std::fs::metadata(dir.join(&extra[0])).unwrap().len(), 0);
    }
}

/// The account's private keys, as the pickle holds them.
fn private_keys(c: &Client) -> Vec<Vec<u8>> {
    let pickle = serde_json::to_value(c.dangerous_account_pickle()).unwrap();
    let mut out = Vec::new();
    collect_byte_arrays(&pickle, &mut out);
    assert!(out.len() >= 2, "found the identity keys in the pickle");
    out
}

fn collect_byte_arrays(v: &serde_json::Value, out: &mut Vec<Vec<u8>>) {
    match v {
        serde_json::Value::Array(a)
            if a.len() == 32 && a.iter().all(|x| x.as_u64().is_some_and(|n| n < 256)) =>
        {
            out.push(a.iter().map(|x| x.as_u64().unwrap_or(0) as u8).collect());
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| collect_byte_arrays(x, out)),
        serde_json::Value::Object(o) => o.values().for_each(|x| collect_byte_arrays(x, out)),
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_handle_leaves_no_store() {
    let cast = Cast::new().await;
    let path = cast.dir.path().join("second-blue.store");
    let err = Client::create(
        &path,
        PASS,
        KdfParams::INSECURE_FOR_TESTS,
        &cast.relay.url,
        &h("blue"),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), "relay_refused");
    assert!(err.to_string().contains("handle_taken"), "{err}");
    assert!(!path.exists());
}

/// A sync commits its store once a page of the mailbox, not once a
/// delivery: each commit is fsyncs (the rollback journal, the file), so
/// a busy mailbox read one commit a message fell ever further behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_commits_once_a_page_not_once_a_delivery() {
    let mut cast = Cast::new().await;
    let id = cast.open_channel(false).await;
    const SENT: usize = 40;
    for i in 0..SENT {
        cast.blue
            .send_text(id, &format!("page {i}"), None)
            .await
            .unwrap();
    }
    let before = cast.red.store_commits();
    let report = cast.red.sync().await.unwrap();
    let commits = cast.red.store_commits() - before;
    let texts: Vec<String> = report
        .received
        .iter()
        .filter_map(|e| e.text.clone())
        .collect();
    let expected: Vec<String> = (0..SENT).map(|i| format!("page {i}")).collect();
    assert_eq!(texts, expected, "every message reported, in order");
    assert!(
        commits < 10,
        "{commits} store commits to read {SENT} messages in one page"
    );
    // Nothing lost to the batching: the store holds them all.
    assert_eq!(
        cast.red
            .log(Some(id))
            .unwrap()
            .iter()
            .filter(|m| m.text.as_deref().is_some_and(|t| t.starts_with("page ")))
            .count(),
        SENT
    );
}
