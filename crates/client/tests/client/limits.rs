//! The client under the relay's limits: a token that expires under an open
//! WebSocket, and one-time keys kept at their target at a bounded pace
//! whatever stock the relay reports.

use std::time::Duration;

use backchannel_client::{ONE_TIME_KEYS_TARGET, ONE_TIME_KEYS_UPLOAD_PER_HOUR};
use backchannel_relay::RelayConfig;
use futures_util::StreamExt as _;

use crate::{h, Cast};

/// The relay closes the push stream when the token expires; the client
/// logs in again, reconnects from its cursor and misses nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_stream_closed_at_token_expiry_resumes_after_a_new_login() {
    let mut config = RelayConfig::default();
    config.token_ttl_ms = 2_000;
    let mut cast = Cast::with_config(config).await;
    let id = cast.open_channel(false).await;
    let mut stream = cast.red.push_stream().await.unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(6), async {
        while let Some(frame) = stream.next().await {
            if frame.is_err() {
                break;
            }
        }
    })
    .await;
    assert!(
        ended.is_ok(),
        "the relay must close the stream at token expiry"
    );
    cast.blue
        .send_text(id, "after the expiry", None)
        .await
        .unwrap();
    let mut stream = cast.red.push_stream().await.unwrap();
    let frame = tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .expect("a push after reconnecting");
    assert!(matches!(frame, Some(Ok(_))), "{frame:?}");
    let report = cast.red.sync().await.unwrap();
    assert!(
        report
            .received
            .iter()
            .any(|e| e.text.as_deref() == Some("after the expiry")),
        "{report:?}"
    );
}

/// A relay reporting no keys at every sync gets at most the hourly budget;
/// one reporting plenty gets none; neither changes the keys themselves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lying_key_stock_changes_only_the_upload_pace() {
    let mut cast = Cast::new().await;
    let hostile = cast.relay.hostile.clone();
    // Lying downwards: every sync finds the stock emptied.
    let mut uploaded = 0;
    for _ in 0..6 {
        hostile.keep_newest_one_time_keys("red", 0);
        cast.red.sync().await.unwrap();
        uploaded += hostile.one_time_key_count("red");
    }
    assert_eq!(uploaded as usize, ONE_TIME_KEYS_UPLOAD_PER_HOUR);
    // An hour later the budget is back.
    cast.advance_s(3_600);
    hostile.keep_newest_one_time_keys("red", 0);
    cast.red.sync().await.unwrap();
    assert_eq!(
        hostile.one_time_key_count("red") as usize,
        ONE_TIME_KEYS_TARGET
    );
    // Lying upwards: a stock of junk keeps the client from uploading.
    cast.advance_s(3_600);
    hostile.keep_newest_one_time_keys("blue", 0);
    hostile.add_junk_one_time_keys("blue", 1_000);
    cast.blue.sync().await.unwrap();
    assert_eq!(hostile.one_time_key_count("blue"), 1_000);
}

/// A fallback key handed out is rotated at the next sync, at most once an hour.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claimed_fallback_key_is_rotated_at_most_once_an_hour() {
    let mut cast = Cast::new().await;
    let store = cast.relay.store();
    let claimed = |cast: &Cast| {
        cast.relay
            .store()
            .key_stock(&h("red"))
            .unwrap()
            .fallback_claimed
    };
    store.claim_key(&h("red"), false).unwrap().unwrap();
    assert!(claimed(&cast));
    cast.red.sync().await.unwrap();
    assert!(!claimed(&cast), "the claimed fallback key is replaced");
    cast.relay
        .store()
        .claim_key(&h("red"), false)
        .unwrap()
        .unwrap();
    cast.red.sync().await.unwrap();
    assert!(claimed(&cast), "not twice within the hour");
    cast.advance_s(3_600);
    cast.red.sync().await.unwrap();
    assert!(!claimed(&cast));
}
