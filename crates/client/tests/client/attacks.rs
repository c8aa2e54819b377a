//! One test per row of ATTACKS.md (row 13 is a protocol unit test:
//! `login_signature_never_verifies_as_a_one_time_key_signature`; row 18
//! comes with the escrow). A hostile relay (testkit) mounts each attack; the
//! honest clients must raise the alert named, with the message ids involved.

use std::collections::BTreeMap;

use backchannel_client::Client;
use backchannel_protocol::member::Alert;
use backchannel_protocol::{ChannelId, Envelope, Identity, IdentityKeys, MessageId, OlmType};

use crate::{alert_ids, alert_member, alert_pos, alert_who};
use crate::{h, Cast};

/// Open alerts (not dismissed, not cleared, not notices).
fn open(c: &Client) -> Vec<Alert> {
    c.open_alerts()
}

fn kinds(c: &Client) -> Vec<&'static str> {
    open(c).iter().map(|a| a.kind.code()).collect()
}

/// The position of a message in its sender's chain.
fn seq_of(c: &Client, id: ChannelId, m: MessageId) -> u64 {
    c.log(Some(id))
        .unwrap()
        .iter()
        .find(|e| e.message_id == m.to_hex())
        .unwrap()
        .seq
}

async fn setup() -> (Cast, ChannelId) {
    let mut cast = Cast::new().await;
    let id = cast.open_channel(false).await;
    (cast, id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row_01_a_dropped_message_is_a_gap_at_the_next_one() {
    let (mut cast, id) = setup().await;
    cast.blue.send_text(id, "one", None).await.unwrap();
    let m2 = cast.blue.send_text(id, "two", None).await.unwrap();
    cast.relay.hostile.take(m2, "red");
    let m3 = cast.blue.send_text(id, "three", None).await.unwrap();
    cast.red.sync().await.unwrap();
    let alerts = open(&cast.red);
    assert_eq!(kinds(&cast.red), ["gap"]);
    assert_eq!(alert_who(&alerts[0]), "blue");
    assert_eq!(alert_pos(&alerts[0]), [seq_of(&cast.blue, id, m2)]);
    assert_eq!(alert_ids(&alerts[0]), [m3.to_hex()]);
    // The later message is still shown.
    assert!(cast
        .red
        .log(Some(id))
        .unwrap()
        .iter()
        .any(|e| e.text.as_deref() == Some("three")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row_02_a_tail_drop_is_ack_overdue_for_every_member_affected() {
    let (mut cast, id) = setup().await;
    let last = cast
        .blue
        .send_text(id, "the last word", None)
        .await
        .unwrap();
    let held = cast.relay.hostile.take(last, "red");
    for c in [&mut cast.mediator, &mut cast.red, &mut cast.blue] {
        c.sync().await.unwrap();
    }
    assert!(kinds(&cast.blue).is_empty(), "nothing before the deadline");
    cast.advance_s(3601);
    for c in [&mut cast.mediator, &mut cast.blue] {
        c.sync().await.unwrap();
        let alerts = open(c);
        assert_eq!(alerts.len(), 1, "{}: {alerts:?}", c.me());
        assert_eq!(
            (alerts[0].kind.code(), alert_member(&alerts[0])),
            ("ack_overdue", "red")
        );
        assert!(alert_ids(&alerts[0]).contains(&last.to_hex()));
    }
    // Red was not cut off for good: the message arrives late and red's
    // receipt clears the alert.
    cast.relay.hostile.deliver(&held);
    cast.red.sync().await.unwrap();
    cast.blue.sync().await.unwrap();
    assert!(kinds(&cast.blue).is_empty(), "{:?}", open(&cast.blue));
    assert!(cast
        .blue
        .alerts()
        .unwrap()
        .iter()
        .any(|a| a.kind.code() == "ack_overdue" && a.cleared.is_some()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row_02_a_member_cut_off_for_good_stays_overdue() {
    let (mut cast, id) = setup().await;
    let m = cast
        .blue
        .send_text(id, "are you there?", None)
        .await
        .unwrap();
    cast.relay.hostile.take(m, "red");
    cast.mediator.sync().await.unwrap();
    cast.advance_s(3601);
    cast.blue.sync().await.unwrap();
    let hb = cast.blue.send_heartbeat(id).await.unwrap();
    cast.relay.hostile.take(hb, "red");
    cast.mediator.sync().await.unwrap();
    cast.advance_s(3601);
    cast.blue.sync().await.unwrap();
    let alerts = open(&cast.blue);
    assert_eq!(alerts.len(), 1, "one alert per member: {alerts:?}");
    assert_eq!(alert_member(&alerts[0]), "red");
    assert!(alert_ids(&alerts[0]).contains(&m.to_hex()));
    assert!(
        alert_ids(&alerts[0]).contains(&hb.to_hex()),
        "heartbeats are receipted too"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row_03_reordered_messages_are_a_reorder() {
    let (mut cast, id) = setup().await;
    let m1 = cast.blue.send_text(id, "first", None).await.unwrap();
    let held = cast.relay.hostile.take(m1, "red");
    cast.blue.send_text(id, "second", None).await.unwrap();
    cast.red.sync().await.unwrap();
    assert_eq!(kinds(&cast.red), ["gap"]);
    cast.relay.hostile.deliver(&held);
    cast.red.sync().await.unwrap();
    let alerts = open(&cast.red);
    assert_eq!(
        kinds(&cast.red),
        ["reorder"],
        "the gap is closed: {alerts:?}"
    );
    assert_eq!(alert_ids(&alerts[0]), [m1.to_hex()]);
    let texts: Vec<_> = cast
        .red
        .log(Some(id))
        .unwrap()
        .iter()
        .filter_map(|e| e.text.clone())
        .collect();
    assert_eq!(texts, ["second", "first"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row_04_a_delayed_reply_is_a_crossed_messages_notice() {
    let (mut cast, id) = setup().await;
    let q1 = cast
        .blue
        .send_text(id, "Will you hold fire?", None)
        .await
        .unwrap();
    cast.red.sync().await.unwrap();
    let q2 = cast
        .blue
        .send_text(id, "Including at sea?", None)
        .await
        .unwrap();
    // Red answers q1 before it has seen q2 (the relay delays q2 to red).
    let held = cast.relay.hostile.take(q2, "red");
    let reply = cast.red.send_text(id, "Yes.", Some(q1)).await.unwrap();
    cast.relay.hostile.deliver(&held);
    cast.blue.sync().await.unwrap();
    assert!(kinds(&cast.blue).is_empty(), "a notice is not an alert");
    let notices: Vec<_> = cast
        .blue
        .alerts()
        .unwrap()
        .into_iter()
        .filter(|a| a.kind.is_notice())
        .collect();
    assert_eq!(notices.len(), 1);
    assert_eq!(notices[0].kind.code(), "crossed_messages");
    assert_eq!(alert_ids(&notices[0]), [reply.to_hex(), q2.to_hex()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row_05_replayed_or_moved_ciphertexts_are_a_replay() {
    let (mut cast, id) = setup().await;
    let m = cast.blue.send_text(id, "once only", None).await.unwrap();
    let original = cast.relay.hostile.last("blue", "red");
    cast.red.sync().await.unwrap();
    // Identical redelivery: dropped silently.
    cast.relay.hostile.deliver(&original);
    cast.red.sync().await.unwrap();
    assert!(kinds(&cast.red).is_empty());
    // The same ciphertext under a new message id, and moved to another channel.
    let renamed = Envelope {
        message_id: MessageId::random(),
        ..original.clone()
    };
    let moved = Envelope {
        message_id: MessageId::random(),
        channel_id: ChannelId::random(),
        ..original.clone()
    };
    cast.relay.hostile.deliver(&renamed);
    cast.relay.hostile.deliver(&moved);
    cast.red.sync().await.unwrap();
    let alerts = open(&cast.red);
    assert_eq!(kinds(&cast.red), ["replay", "replay"]);
    assert_eq!(alert_ids(&alerts[0]), [renamed.message_id.to_hex()]);
    assert_eq!(alert_ids(&alerts[1]), [moved.message_id.to_hex()]);
    let shown = cast
        .red
        .log(Some(id))
        .unwrap()
        .iter()
        .filter(|e| e.text.as_deref() == Some("once only"))
        .count();
    assert_eq!(shown, 1);
    let _ = m;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row_06_flipped_bits_are_modified() {
    let (mut cast, id) = setup().await;
    let m1 = cast
        .blue
        .send_text(id, "altered in transit", None)
        .await
        .unwrap();
    cast.relay.hostile.flip(m1, "red", 40);
    let m2 = cast.blue.send_text(id, "next", None).await.unwrap();
    cast.red.sync().await.unwrap();
    let alerts = open(&cast.red);
    assert_eq!(kinds(&cast.red), ["modified"], "{alerts:?}");
    assert_eq!(alert_ids(&alerts[0]), [m1.to_hex(), m2.to_hex()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row_07_an_injected_ciphertext_is_forged() {
    let (mut cast, id) = setup().await;
    let next = cast.blue.next_seq(&id).unwrap().0;
    // Garbage where blue's next message would be, a normal message and a
    // pre-key message from an identity claiming to be blue.
    let fake = Envelope {
        channel_id: id,
        message_id: MessageId::random(),
        sender: h("blue"),
        recipient: h("red"),
        seq_hint: next,
        olm_type: OlmType::Normal,
        ciphertext: vec![3; 120],
    };
    cast.relay.hostile.deliver(&fake);
    let mut impostor = Identity::new();
    let red_key = cast.red_key_for_tests(&mut impostor).await;
    let mut session = impostor
        .outbound_session(&cast.red.keys(), &red_key)
        .unwrap();
    let (t, ct) = session.encrypt(&[0; 512]).unwrap();
    let prekey = Envelope {
        message_id: MessageId::random(),
        olm_type: t,
        ciphertext: ct,
        ..fake.clone()
    };
    cast.relay.hostile.deliver(&prekey);
    cast.blue
        .send_text(id, "the genuine one", None)
        .await
        .unwrap();
    cast.red.sync().await.unwrap();
    let alerts = open(&cast.red);
    assert_eq!(kinds(&cast.red), ["forged", "forged"], "{alerts:?}");
    let ids: Vec<_> = alerts.iter().flat_map(alert_ids).collect();
    assert!(ids.contains(&fake.message_id.to_hex()) && ids.contains(&prekey.message_id.to_hex()));
    assert!(
        !kinds(&cast.red).contains(&"key_changed"),
        "an unknown identity is forged, not key_changed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row_08_an_equivocating_member_is_a_fork_when_head_vectors_meet() {
    let (mut cast, id) = setup().await;
    let m = cast
        .blue
        .dangerous_equivocate(
            id,
            "version for the mediator",
            BTreeMap::from([(h("red"), "version for red".to_string())]),
        )
        .await
        .unwrap();
    let pos = seq_of(&cast.blue, id, m);
    // Each receives its version and receipts it; the head vectors meet.
    cast.red.sync().await.unwrap();
    cast.mediator.sync().await.unwrap();
    cast.red.sync().await.unwrap();
    for c in [&cast.mediator, &cast.red] {
        let alerts = open(c);
        assert!(!alerts.is_empty(), "{}", c.me());
        assert!(
            alerts
                .iter()
                .all(|a| a.kind.code() == "fork" && alert_who(a) == "blue"),
            "{}: {alerts:?}",
            c.me()
        );
        assert!(
            alerts[0].detail.contains(&format!("#{pos}")),
            "{}",
            alerts[0].detail
        );
        assert!(
            alerts[0].detail.contains("equivocated"),
            "says what it can tell"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row_09_a_member_the_relay_adds_is_a_membership_mismatch() {
    let (mut cast, id) = setup().await;
    backchannel_testkit::Principal::join(&cast.relay.url, "ghost", 2).await;
    cast.relay.add_routing_member(id, &h("ghost"));
    cast.blue.sync().await.unwrap();
    assert_eq!(
        open(&cast.blue)
            .iter()
            .map(|a| (a.kind.code(), alert_member(a)))
            .collect::<Vec<_>>(),
        [("membership_mismatch", "ghost")]
    );
    assert_eq!(
        cast.blue.send_text(id, "x", None).await.unwrap_err().code(),
        "blocked"
    );
    assert_eq!(cast.relay.posted_to(&h("ghost")), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row_10_a_substituted_identity_key_is_key_changed_and_blocks() {
    let mut cast = Cast::new().await;
    let policy = backchannel_protocol::payload::Policy {
        mediator_reads: false,
        receipt_deadline_s: 3600,
        heartbeat_interval_s: 600,
    };
    let id = cast
        .mediator
        .create_channel("t", &[h("blue"), h("red")], &[], policy)
        .await
        .unwrap();
    cast.blue.sync().await.unwrap(); // red's key is introduced and pinned
    cast.relay
        .hostile
        .set_identity("red", &Identity::new().keys());
    let err = cast
        .blue
        .accept(id, crate::proposal(&cast.blue, id))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "key_changed");
    let alerts = open(&cast.blue);
    assert_eq!(
        (alerts[0].kind.code(), alert_who(&alerts[0])),
        ("key_changed", "red")
    );
    assert_eq!(
        cast.blue.send_text(id, "x", None).await.unwrap_err().code(),
        "blocked"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row_10_a_substituted_one_time_key_is_key_changed() {
    let mut cast = Cast::new().await;
    let policy = backchannel_protocol::payload::Policy {
        mediator_reads: false,
        receipt_deadline_s: 3600,
        heartbeat_interval_s: 600,
    };
    let id = cast
        .mediator
        .create_channel("t", &[h("blue"), h("red")], &[], policy)
        .await
        .unwrap();
    cast.blue.sync().await.unwrap();
    cast.relay
        .hostile
        .substitute_one_time_keys("red", Identity::new().keys().curve25519);
    assert_eq!(
        cast.blue
            .accept(id, crate::proposal(&cast.blue, id))
            .await
            .unwrap_err()
            .code(),
        "key_changed"
    );
    assert_eq!(kinds(&cast.blue), ["key_changed"]);
}

/// What a lying relay serves, from the real keys and a known principal's.
type KeyLie = fn(IdentityKeys, IdentityKeys) -> IdentityKeys;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row_11_and_12_bad_keys_are_bad_key() {
    let mut cast = Cast::new().await;
    let policy = backchannel_protocol::payload::Policy {
        mediator_reads: false,
        receipt_deadline_s: 3600,
        heartbeat_interval_s: 600,
    };
    cast.mediator.pin_from_relay(&h("red")).await.unwrap();
    let red_keys = cast.red.keys();
    let cases: [(&str, KeyLie); 4] = [
        ("identity point", |real, _| IdentityKeys {
            curve25519: [0; 32],
            ..real
        }),
        ("low order", |real, _| IdentityKeys {
            curve25519: {
                let mut k = [0; 32];
                k[0] = 1;
                k
            },
            ..real
        }),
        ("an Ed25519 key as the Curve25519 key", |real, _| {
            IdentityKeys {
                curve25519: real.ed25519,
                ..real
            }
        }),
        ("a known principal's key under another id", |_, red| red),
    ];
    for (i, (what, make)) in cases.iter().enumerate() {
        let name = format!("dave{i}");
        let dave = backchannel_testkit::Principal::join(&cast.relay.url, &name, 2).await;
        cast.relay
            .hostile
            .set_identity(&name, &make(dave.identity.keys(), red_keys));
        let err = cast
            .mediator
            .create_channel("t", &[h(&name)], &[], policy)
            .await
            .unwrap_err();
        assert_eq!(err.code(), "bad_key", "{what}: {err}");
        assert_eq!(
            cast.mediator
                .alerts()
                .unwrap()
                .iter()
                .filter(|a| a.kind.code() == "bad_key")
                .count(),
            i + 1,
            "{what}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row_14_a_forged_mailbox_ack_clears_nothing() {
    let (mut cast, id) = setup().await;
    let m = cast
        .blue
        .send_text(id, "did red get this?", None)
        .await
        .unwrap();
    // The relay deletes red's copy as if red had fetched and acked it.
    cast.relay.hostile.take(m, "red");
    cast.red.sync().await.unwrap();
    cast.mediator.sync().await.unwrap();
    cast.advance_s(3601);
    cast.blue.sync().await.unwrap();
    assert_eq!(kinds(&cast.blue), ["ack_overdue"]);
    assert_eq!(alert_member(&open(&cast.blue)[0]), "red");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row_15_older_state_served_again_is_a_rollback() {
    let (mut cast, id) = setup().await;
    cast.blue.send_text(id, "hello", None).await.unwrap();
    let env = cast.relay.hostile.last("blue", "red");
    cast.red.sync().await.unwrap();
    // A mailbox position below the cursor red already read.
    cast.relay.hostile.serve_stale(1, env);
    cast.red.sync().await.unwrap();
    assert_eq!(kinds(&cast.red), ["rollback"]);
    // A key version below one already seen.
    cast.mediator.pin_from_relay(&h("red")).await.unwrap();
    cast.relay.hostile.set_key_version("red", 1);
    assert!(cast.mediator.pin_from_relay(&h("red")).await.is_err());
    assert_eq!(kinds(&cast.mediator), ["rollback"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row_16_messages_withheld_past_the_olm_window_are_late_undecryptable() {
    let (mut cast, id) = setup().await;
    let mut held = Vec::new();
    for i in 0..45 {
        let m = cast
            .blue
            .send_text(id, &format!("held {i}"), None)
            .await
            .unwrap();
        held.push(cast.relay.hostile.take(m, "red"));
    }
    cast.blue
        .send_text(id, "released first", None)
        .await
        .unwrap();
    cast.red.sync().await.unwrap();
    assert_eq!(kinds(&cast.red), ["gap"]);
    for e in &held {
        cast.relay.hostile.deliver(e);
    }
    cast.red.sync().await.unwrap();
    let k = kinds(&cast.red);
    let late = k.iter().filter(|k| **k == "late_undecryptable").count();
    assert!(late >= 1, "{k:?}");
    assert!(
        k.iter()
            .all(|k| *k == "late_undecryptable" || *k == "reorder" || *k == "gap"),
        "never forged or modified: {k:?}"
    );
    assert_eq!(late + k.iter().filter(|k| **k == "reorder").count(), 45);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row_17_truncated_acknowledged_rows_are_a_gap_or_ack_overdue() {
    let (mut cast, id) = setup().await;
    let m1 = cast.blue.send_text(id, "one", None).await.unwrap();
    let m2 = cast.blue.send_text(id, "two", None).await.unwrap();
    // The relay loses acknowledged rows (a truncated table).
    cast.relay.hostile.take(m1, "red");
    cast.relay.hostile.take(m2, "red");
    cast.red.sync().await.unwrap();
    cast.mediator.sync().await.unwrap();
    assert!(kinds(&cast.red).is_empty(), "red cannot know yet");
    cast.advance_s(3601);
    cast.blue.sync().await.unwrap();
    assert_eq!(kinds(&cast.blue), ["ack_overdue"]);
    cast.blue.send_text(id, "three", None).await.unwrap();
    cast.red.sync().await.unwrap();
    assert_eq!(kinds(&cast.red), ["gap"]);
    assert_eq!(alert_pos(&open(&cast.red)[0]).len(), 2);
}
