//! Escrowed simultaneous exchange over a real relay.

use std::time::Duration;

use backchannel_client::Client;
use backchannel_protocol::{ExchangeId, Timestamp};
use backchannel_testkit::contains;

use crate::{h, Cast};

const BLUE_OFFER: &str = "Blue withdraws two brigades from the border zone.";
const RED_OFFER: &str = "Red releases the detained crew.";

async fn exchange(
    cast: &mut Cast,
    id: backchannel_protocol::ChannelId,
    deadline_in_ms: i64,
) -> ExchangeId {
    let deadline = Timestamp(cast.mediator.now().0 + deadline_in_ms);
    let x = cast
        .blue
        .exchange_create(
            id,
            &[h("red")],
            "Simultaneous gestures of good faith.",
            deadline,
        )
        .await
        .unwrap();
    x
}

fn kinds(c: &Client) -> Vec<&'static str> {
    c.open_alerts().into_iter().map(|a| a.kind.code()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offers_are_released_together_and_nothing_leaks_before() {
    let mut cast = Cast::new().await;
    let id = cast.open_channel(false).await;
    let x = exchange(&mut cast, id, 3_600_000).await;
    // Before release, red's status is the same bytes whether or not blue submitted.
    let before = cast.red.exchange_status_bytes(x).await.unwrap();
    cast.blue.exchange_submit(x, BLUE_OFFER).await.unwrap();
    assert_eq!(cast.red.exchange_status_bytes(x).await.unwrap(), before);
    // Withdraw, then submit again: still nothing released.
    cast.blue.exchange_withdraw(x).await.unwrap();
    assert_eq!(cast.red.exchange_status_bytes(x).await.unwrap(), before);
    cast.blue.exchange_submit(x, BLUE_OFFER).await.unwrap();
    // A non-participant is refused.
    let err = cast.mediator.exchange_status(x).await.unwrap_err();
    assert!(err.to_string().contains("not_a_participant"), "{err}");
    // The relay restarts in the middle: nothing is lost.
    cast.relay.restart().await;
    // A connection pooled to the old process may fail once (the request
    // never reached a relay); a read clears it before the submission.
    for _ in 0..3 {
        if cast.red.exchange_status(x).await.is_ok() {
            break;
        }
    }
    let red = cast.red.exchange_submit(x, RED_OFFER).await.unwrap();
    assert_eq!(red.status.state, "released");
    assert_eq!(
        red.offers
            .iter()
            .map(|o| o.offer.as_deref())
            .collect::<Vec<_>>(),
        [Some(BLUE_OFFER)]
    );
    let blue = cast.blue.exchange_status(x).await.unwrap();
    assert_eq!(blue.offers[0].offer.as_deref(), Some(RED_OFFER));
    assert_eq!(
        blue.status.released_at_ms, red.status.released_at_ms,
        "released together"
    );
    assert!(kinds(&cast.blue).is_empty() && kinds(&cast.red).is_empty());
    // Each confirms in the channel what it received; the relay never saw the words.
    cast.sync_all().await;
    let log = cast.red.log(Some(id)).unwrap();
    assert!(log.iter().any(|e| e.sender == "blue"
        && e.text
            .as_deref()
            .is_some_and(|t| t.contains("released; received red:"))));
    let bytes = cast.relay.file_bytes();
    assert!(!contains(&bytes, BLUE_OFFER.as_bytes()) && !contains(&bytes, RED_OFFER.as_bytes()));
    // Each confirmation names, by digest over the exact sealed bytes, the
    // offer its submitter sealed.
    let blue = cast.blue.exchange_status(x).await.unwrap();
    let red = cast.red.exchange_status(x).await.unwrap();
    for (v, by) in [(&blue, "red"), (&red, "blue")] {
        assert_eq!(
            v.confirmations,
            [backchannel_client::Confirmation {
                by: by.into(),
                matches: Some(true)
            }]
        );
    }
    assert!(kinds(&cast.blue).is_empty() && kinds(&cast.red).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offer_sealed_in_another_encoding_still_confirms() {
    let mut cast = Cast::new().await;
    let id = cast.open_channel(false).await;
    let x = exchange(&mut cast, id, 3_600_000).await;
    let st = cast.blue.exchange_status(x).await.unwrap().status;
    // As a client from before protocol v1 (or another language) might seal
    // it: JSON, keys in another order, spaces. No re-encoding of it could
    // give back these bytes; the digest is over them as they are.
    let json = format!(
        r#"{{ "offer" : "{BLUE_OFFER}", "sealed_at_ms": {}, "deadline_ms": {}, "terms_digest": "{}", "exchange_id": "{x}" }}"#,
        cast.blue.now().0,
        st.deadline_ms,
        st.terms_digest
    );
    let plaintext = backchannel_protocol::payload::pad(json.as_bytes(), 512).unwrap();
    cast.blue
        .dangerous_submit_plaintext(x, &plaintext)
        .await
        .unwrap();
    let red = cast.red.exchange_submit(x, RED_OFFER).await.unwrap();
    assert_eq!(red.offers[0].offer.as_deref(), Some(BLUE_OFFER));
    assert_eq!(
        red.offers[0].digest.as_deref(),
        Some(
            backchannel_protocol::escrow::offer_digest(&plaintext)
                .to_hex()
                .as_str()
        )
    );
    cast.sync_all().await;
    let blue = cast.blue.exchange_status(x).await.unwrap();
    assert_eq!(blue.confirmations.len(), 1);
    assert_eq!(
        blue.confirmations[0].matches,
        Some(true),
        "{:?}",
        blue.confirmations
    );
    assert!(kinds(&cast.blue).is_empty(), "{:?}", kinds(&cast.blue));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_offer_released_instead_of_the_last_is_caught_by_its_submitter() {
    let mut cast = Cast::new().await;
    let id = cast.open_channel(false).await;
    let x = exchange(&mut cast, id, 3_600_000).await;
    cast.blue
        .exchange_submit(x, "Blue withdraws one brigade.")
        .await
        .unwrap();
    let first = cast.relay.hostile.offer_copy(x, "blue", "red");
    cast.blue.exchange_submit(x, BLUE_OFFER).await.unwrap();
    // The relay keeps the replaced copy and releases it: authentic, for
    // this exchange, before the deadline, so red cannot tell.
    cast.relay
        .hostile
        .restore_offer_copy(x, "blue", "red", &first);
    let red = cast.red.exchange_submit(x, RED_OFFER).await.unwrap();
    assert_eq!(
        red.offers[0].offer.as_deref(),
        Some("Blue withdraws one brigade.")
    );
    assert!(kinds(&cast.red).is_empty());
    // Red's confirmation names what it opened; blue sees it is not its last.
    cast.blue.sync().await.unwrap();
    assert_eq!(kinds(&cast.blue), ["escrow_replaced_offer"]);
    let blue = cast.blue.exchange_status(x).await.unwrap();
    assert_eq!(blue.confirmations[0].matches, Some(false));
    cast.blue.sync().await.unwrap();
    assert_eq!(kinds(&cast.blue), ["escrow_replaced_offer"], "raised once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deadline_destroys_the_sealed_offers_in_the_files() {
    let mut cast = Cast::new().await;
    let id = cast.open_channel(false).await;
    let x = exchange(&mut cast, id, 1_500).await;
    cast.blue.exchange_submit(x, BLUE_OFFER).await.unwrap();
    let copies = cast.relay.store().offers_for(&x, &h("red")).unwrap();
    let sealed = copies[0].ciphertext.clone();
    assert!(
        contains(&cast.relay.file_bytes(), &sealed[..40]),
        "the scan finds the sealed offer"
    );
    tokio::time::sleep(Duration::from_millis(1_600)).await;
    let st = cast.red.exchange_status(x).await.unwrap();
    assert_eq!(st.status.state, "destroyed");
    assert!(
        cast.red.exchange_submit(x, RED_OFFER).await.is_err(),
        "too late"
    );
    // What every backend guarantees: no query returns it any more.
    assert!(cast
        .relay
        .store()
        .offers_for(&x, &h("red"))
        .unwrap()
        .is_empty());
    assert!(!cast.relay.store().has_offer(&x, &h("blue")).unwrap());
    if backchannel_testkit::on_postgres() {
        // PostgreSQL keeps deleted bytes until it reuses the space
        // (SECURITY.md): the files are not scanned there.
        return;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while contains(&cast.relay.file_bytes(), &sealed[..40]) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the sealed offer is still in the database or its WAL"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampering_relay_raises_the_escrow_alerts() {
    let mut cast = Cast::new().await;
    let id = cast.open_channel(false).await;
    // Partial release: red's copy for blue vanishes.
    let x1 = exchange(&mut cast, id, 3_600_000).await;
    cast.blue.exchange_submit(x1, BLUE_OFFER).await.unwrap();
    cast.red.exchange_submit(x1, RED_OFFER).await.unwrap();
    cast.relay.hostile.delete_offer(x1, "red", "blue");
    cast.blue.exchange_status(x1).await.unwrap();
    assert_eq!(kinds(&cast.blue), ["escrow_partial_release"]);

    // Foreign offer: x3's copy for red is the one from x2.
    let x2 = exchange(&mut cast, id, 3_600_000).await;
    let x3 = exchange(&mut cast, id, 3_600_000).await;
    for x in [x2, x3] {
        cast.blue.exchange_submit(x, BLUE_OFFER).await.unwrap();
    }
    cast.relay.hostile.move_offer(x2, x3, "blue", "red");
    let v = cast.red.exchange_submit(x3, RED_OFFER).await.unwrap();
    assert!(
        v.problems
            .iter()
            .any(|p| p.starts_with("escrow_foreign_offer")),
        "{:?}",
        v.problems
    );
    // Red also learnt, from blue's confirmation of x1, that its x1 offer
    // never reached blue.
    assert_eq!(
        kinds(&cast.red),
        ["escrow_partial_release", "escrow_foreign_offer"]
    );

    // Late release: red saw the exchange unreleased past its deadline (on
    // its own clock); a release after that is late.
    let x4 = exchange(&mut cast, id, 60_000).await;
    cast.blue.exchange_submit(x4, BLUE_OFFER).await.unwrap();
    cast.advance_s(61);
    assert_eq!(
        cast.red.exchange_status(x4).await.unwrap().status.state,
        "open",
        "the relay's clock lags"
    );
    cast.clock
        .fetch_sub(61_000, std::sync::atomic::Ordering::SeqCst);
    cast.red.exchange_submit(x4, RED_OFFER).await.unwrap();
    assert!(
        kinds(&cast.red).contains(&"escrow_late_release"),
        "{:?}",
        kinds(&cast.red)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_sealed_for_terms_other_than_the_announced_ones() {
    let mut cast = Cast::new().await;
    let id = cast.open_channel(false).await;
    let x = exchange(&mut cast, id, 3_600_000).await;
    cast.red.sync().await.unwrap();
    let other = backchannel_protocol::Digest::of(&[b"Red disarms first."]);
    cast.relay.hostile.swap_exchange_terms(x, other.0);
    let err = cast.red.exchange_submit(x, RED_OFFER).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("differs from what its creator announced"),
        "{err}"
    );
    assert!(
        !cast
            .red
            .exchange_status(x)
            .await
            .unwrap()
            .status
            .you_submitted
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_participants_confirmations_count_and_a_refused_resubmission_changes_nothing() {
    let mut cast = Cast::new().await;
    let id = cast.open_channel(false).await;
    let x = exchange(&mut cast, id, 3_600_000).await;
    cast.blue.exchange_submit(x, BLUE_OFFER).await.unwrap();
    cast.red.exchange_submit(x, RED_OFFER).await.unwrap();
    // After release, a second submission is refused: it was never sealed.
    assert!(cast
        .blue
        .exchange_submit(x, "Something else.")
        .await
        .is_err());
    // The mediator, not a participant, claims blue's offer was another one.
    cast.mediator
        .send_structured(
            id,
            backchannel_protocol::commitments::Structured::EscrowConfirmation {
                exchange: x,
                offers: vec![backchannel_protocol::commitments::ConfirmedOffer {
                    from: h("blue"),
                    digest: Some(backchannel_protocol::Digest([9; 32])),
                }],
            },
            None,
        )
        .await
        .unwrap();
    cast.blue.sync().await.unwrap();
    let v = cast.blue.exchange_status(x).await.unwrap();
    assert!(kinds(&cast.blue).is_empty(), "{:?}", kinds(&cast.blue));
    assert_eq!(
        v.confirmations,
        [backchannel_client::Confirmation {
            by: "red".into(),
            matches: Some(true)
        }]
    );
}
