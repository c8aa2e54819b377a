//! One conformance suite that every [`RelayStore`] backend must pass.
//!
//! A backend's test module calls [`relay_store_conformance!`](crate::relay_store_conformance)
//! with an expression that makes a fresh, empty store (and anything that must
//! outlive it, such as a temporary directory):
//!
//! ```
//! use backchannel_relay::store::SqliteStore;
//!
//! backchannel_relay::relay_store_conformance!(|| {
//!     let dir = tempfile::tempdir().unwrap();
//!     let store = SqliteStore::open(&dir.path().join("relay.db")).unwrap();
//!     (store, dir)
//! });
//! # fn main() {}
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use backchannel_protocol::{
    ChannelId, Digest, Envelope, Handle, Identity, IdentityKeys, MessageId, OlmType, SignedKey,
    Timestamp,
};

use super::{
    ChannelRecord, ExchangeRecord, ExchangeState, OfferCopy, Quota, Rate, RateDecision, RelayStore,
    StoreError,
};

/// Generates one `#[test]` per conformance check for a backend. With
/// `optional`, the maker answers an `Option` and a `None` (a backend this
/// machine cannot start) returns from every test: the maker says why.
/// `two_instances` makes two stores on one database and runs the checks
/// that two relay instances meet on.
#[macro_export]
macro_rules! relay_store_conformance {
    (two_instances $make:expr) => {
        $crate::relay_store_conformance!(@pairs $make;
            two_instances_take_a_challenge_once, two_instances_store_a_post_once,
            two_instances_release_an_exchange_once, two_instances_count_one_quota,
            two_instances_keep_cursor_order_for_readers, two_instances_count_one_rate_window);
    };
    (optional $make:expr) => {
        $crate::relay_store_conformance!(@list @optional $make);
    };
    ($make:expr) => {
        $crate::relay_store_conformance!(@list @always $make);
    };
    (@list @$kind:ident $make:expr) => {
        $crate::relay_store_conformance!(@tests $kind $make;
            register_and_look_up, challenges_are_single_use, tokens_round_trip,
            keys_are_claimed_once_then_fallback, key_stock_is_limited,
            channels_are_routing_records, post_is_atomic_and_idempotent,
            mailbox_pages_in_cursor_order, ack_deletes_and_cursors_never_repeat,
            expired_credentials_are_purged, exchanges_release_together_or_are_destroyed,
            own_record_follows_acks_and_posts, a_released_handle_registers_again_with_new_keys,
            invitations_are_single_use_and_expire, mailboxes_are_bounded_with_a_share_per_sender,
            a_senders_storage_is_bounded, a_retry_at_the_sender_quota_is_idempotent,
            rate_windows_count_and_reopen, a_post_counts_its_rate_windows_first,
            the_fallback_key_can_be_asked_for_and_its_claim_is_reported,
            unfetched_envelopes_leave_after_the_retention_limit);
    };
    (@tests always $make:expr; $($name:ident),*) => {
        $(
            #[test]
            fn $name() {
                let (store, _guard) = ($make)();
                $crate::store::conformance::$name(&store);
            }
        )*
    };
    (@tests optional $make:expr; $($name:ident),*) => {
        $(
            #[test]
            fn $name() {
                let Some((store, _guard)) = ($make)() else { return };
                $crate::store::conformance::$name(&store);
            }
        )*
    };
    (@pairs $make:expr; $($name:ident),*) => {
        $(
            #[test]
            fn $name() {
                let Some((a, b, _guard)) = ($make)() else { return };
                $crate::store::conformance::$name(&a, &b);
            }
        )*
    };
}

pub(crate) const T0: Timestamp = Timestamp(1_750_000_000_000);

fn h(s: &str) -> Handle {
    Handle::new(s).unwrap()
}

fn keys() -> IdentityKeys {
    Identity::new().keys()
}

pub(crate) fn env(
    channel: ChannelId,
    message: MessageId,
    from: &str,
    to: &str,
    fill: u8,
) -> Envelope {
    Envelope {
        channel_id: channel,
        message_id: message,
        sender: h(from),
        recipient: h(to),
        seq_hint: 1,
        olm_type: OlmType::PreKey,
        ciphertext: vec![fill; 64],
    }
}

pub(crate) fn with_channel(store: &dyn RelayStore, members: &[&str]) -> ChannelId {
    for m in members {
        store.register(&h(m), &keys(), T0, None).unwrap();
    }
    let id = ChannelId::random();
    store
        .create_channel(&ChannelRecord {
            id,
            members: members.iter().map(|m| h(m)).collect(),
            created_by: h(members[0]),
            created_at: T0,
        })
        .unwrap();
    id
}

pub fn register_and_look_up(store: &dyn RelayStore) {
    let k = keys();
    let rec = store.register(&h("blue"), &k, T0, None).unwrap();
    assert_eq!(rec.key_version, 1);
    assert_eq!(store.principal(&h("blue")).unwrap(), Some(rec));
    assert!(matches!(
        store.register(&h("blue"), &keys(), T0, None),
        Err(StoreError::HandleTaken(_))
    ));
    assert_eq!(
        store.principal(&h("blue")).unwrap().unwrap().keys,
        k,
        "a refused registration changes nothing"
    );
    // Blue's keys under another handle, either key, either way round.
    let other = keys();
    for taken in [
        k,
        IdentityKeys {
            curve25519: k.curve25519,
            ed25519: other.ed25519,
        },
        IdentityKeys {
            curve25519: other.curve25519,
            ed25519: k.ed25519,
        },
        IdentityKeys {
            curve25519: k.ed25519,
            ed25519: other.ed25519,
        },
    ] {
        assert!(matches!(
            store.register(&h("mallory"), &taken, T0, None),
            Err(StoreError::KeyTaken)
        ));
    }
    assert_eq!(store.principal(&h("mallory")).unwrap(), None);
    assert_eq!(store.principal(&h("nobody")).unwrap(), None);
}

pub fn challenges_are_single_use(store: &dyn RelayStore) {
    let c = [7u8; 32];
    store
        .put_challenge(&c, &h("blue"), Timestamp(T0.0 + 60_000))
        .unwrap();
    assert_eq!(
        store.take_challenge(&c).unwrap(),
        Some((h("blue"), Timestamp(T0.0 + 60_000)))
    );
    assert_eq!(store.take_challenge(&c).unwrap(), None);
    assert_eq!(store.take_challenge(&[8u8; 32]).unwrap(), None);
}

pub fn tokens_round_trip(store: &dyn RelayStore) {
    let t = Digest::of(&[b"token"]);
    store.put_token(&t, &h("red"), Timestamp(5)).unwrap();
    assert_eq!(store.token(&t).unwrap(), Some((h("red"), Timestamp(5))));
    assert_eq!(store.token(&Digest::of(&[b"other"])).unwrap(), None);
}

pub fn keys_are_claimed_once_then_fallback(store: &dyn RelayStore) {
    let mut id = Identity::new();
    store.register(&h("red"), &id.keys(), T0, None).unwrap();
    assert_eq!(
        store.claim_key(&h("red"), true).unwrap(),
        None,
        "no keys yet"
    );
    let otks = id.generate_one_time_keys(2);
    let fb = id.generate_fallback_key().unwrap();
    let counts = store
        .upload_keys(&h("red"), &otks, Some(&fb), false)
        .unwrap();
    assert_eq!((counts.one_time_keys, counts.has_fallback), (2, true));
    let again = store.upload_keys(&h("red"), &otks, None, false).unwrap();
    assert_eq!(again.one_time_keys, 2, "re-uploading a key keeps one copy");
    assert!(again.key_version > counts.key_version);

    let mut versions = vec![again.key_version];
    let mut claimed: Vec<SignedKey> = Vec::new();
    for _ in 0..4 {
        let c = store.claim_key(&h("red"), true).unwrap().unwrap();
        versions.push(c.key_version);
        claimed.push(c.key);
    }
    assert_eq!(
        &claimed[..2],
        &otks[..],
        "one-time keys first, oldest first"
    );
    assert_eq!(claimed[2], fb, "then the fallback key");
    assert_eq!(claimed[3], fb, "the fallback key stays");
    assert!(
        versions.windows(2).all(|w| w[0] < w[1]),
        "key version only grows: {versions:?}"
    );
    assert!(matches!(
        store.upload_keys(&h("ghost"), &otks, None, false),
        Err(StoreError::UnknownPrincipal(_))
    ));

    // A restored store replaces what it lacks: only the new keys are held.
    let old = id.generate_one_time_keys(3);
    store.upload_keys(&h("red"), &old, None, false).unwrap();
    let new = id.generate_one_time_keys(1);
    let replaced = store.upload_keys(&h("red"), &new, None, true).unwrap();
    assert_eq!(
        replaced.one_time_keys, 1,
        "the unclaimed old keys are forgotten"
    );
    let c = store.claim_key(&h("red"), true).unwrap().unwrap();
    assert_eq!(c.key, new[0], "a claim gets the new key");
}

pub fn key_stock_is_limited(store: &dyn RelayStore) {
    let mut id = Identity::new();
    store.register(&h("red"), &id.keys(), T0, None).unwrap();
    for _ in 0..10 {
        store
            .upload_keys(&h("red"), &id.generate_one_time_keys(100), None, false)
            .unwrap();
    }
    let before = store.row_counts().unwrap();
    assert!(matches!(
        store.upload_keys(&h("red"), &id.generate_one_time_keys(1), None, false),
        Err(StoreError::LimitExceeded(_))
    ));
    assert_eq!(
        store.row_counts().unwrap(),
        before,
        "a refused upload stores nothing"
    );
}

pub fn channels_are_routing_records(store: &dyn RelayStore) {
    let id = with_channel(store, &["mediator", "blue", "red"]);
    let c = store.channel(&id).unwrap().unwrap();
    assert_eq!(
        c.members,
        vec![h("blue"), h("mediator"), h("red")],
        "sorted"
    );
    assert_eq!(c.created_by, h("mediator"));
    let dup = ChannelRecord {
        id,
        members: vec![h("blue")],
        created_by: h("blue"),
        created_at: T0,
    };
    assert!(matches!(
        store.create_channel(&dup),
        Err(StoreError::ChannelExists(_))
    ));
    let before = store.row_counts().unwrap();
    let ghost = ChannelRecord {
        id: ChannelId::random(),
        members: vec![h("blue"), h("ghost")],
        created_by: h("blue"),
        created_at: T0,
    };
    assert!(store.create_channel(&ghost).is_err());
    assert_eq!(
        store.row_counts().unwrap(),
        before,
        "a refused channel stores nothing"
    );
    assert_eq!(store.channel(&ChannelId::random()).unwrap(), None);
    // Routing membership changes with an amendment; unknown handles are refused whole.
    store.register(&h("green"), &keys(), T0, None).unwrap();
    store
        .set_channel_members(&id, &[h("blue"), h("green"), h("mediator")])
        .unwrap();
    assert_eq!(
        store.channel(&id).unwrap().unwrap().members,
        vec![h("blue"), h("green"), h("mediator")]
    );
    assert!(store
        .set_channel_members(&id, &[h("blue"), h("ghost")])
        .is_err());
    assert_eq!(
        store.channel(&id).unwrap().unwrap().members.len(),
        3,
        "a refused change changes nothing"
    );
}

pub fn post_is_atomic_and_idempotent(store: &dyn RelayStore) {
    let ch = with_channel(store, &["mediator", "blue", "red"]);
    let m = MessageId::random();
    let copies = [
        env(ch, m, "blue", "red", 1),
        env(ch, m, "blue", "mediator", 2),
    ];
    let first = store.post(&copies, T0, &Quota::NONE).unwrap();
    assert_eq!(first.len(), 2);
    assert!(
        store.post(&copies, T0, &Quota::NONE).unwrap().is_empty(),
        "same bytes again store nothing"
    );
    assert_eq!(store.mailbox(&h("red"), 0, 10).unwrap().len(), 1);

    let before = store.row_counts().unwrap();
    // One conflicting copy refuses the whole post, new copies included.
    let mut other = Envelope {
        ciphertext: vec![9; 64],
        ..copies[0].clone()
    };
    other.seq_hint = 1;
    let m2 = MessageId::random();
    let mixed = [env(ch, m2, "red", "mediator", 3), other];
    assert!(matches!(
        store.post(&mixed, T0, &Quota::NONE),
        Err(StoreError::Conflict { .. })
    ));
    assert_eq!(
        store.row_counts().unwrap(),
        before,
        "a refused post stores nothing"
    );
    assert!(matches!(
        store.post(&[env(ch, m2, "red", "ghost", 3)], T0, &Quota::NONE),
        Err(StoreError::UnknownPrincipal(_))
    ));
    assert_eq!(store.row_counts().unwrap(), before);
}

pub fn mailbox_pages_in_cursor_order(store: &dyn RelayStore) {
    let ch = with_channel(store, &["blue", "red"]);
    let ids: Vec<MessageId> = (0..5).map(|_| MessageId::random()).collect();
    for (i, m) in ids.iter().enumerate() {
        store
            .post(
                &[env(ch, *m, "blue", "red", i as u8)],
                Timestamp(T0.0 + i as i64),
                &Quota::NONE,
            )
            .unwrap();
    }
    let all = store.mailbox(&h("red"), 0, 100).unwrap();
    assert_eq!(
        all.iter()
            .map(|e| e.envelope.message_id)
            .collect::<Vec<_>>(),
        ids
    );
    assert!(all.windows(2).all(|w| w[0].cursor < w[1].cursor));
    let page = store.mailbox(&h("red"), all[1].cursor, 2).unwrap();
    assert_eq!(page, all[2..4].to_vec());
    assert!(
        store.mailbox(&h("blue"), 0, 100).unwrap().is_empty(),
        "a sender's mailbox holds nothing of its own"
    );
}

pub fn ack_deletes_and_cursors_never_repeat(store: &dyn RelayStore) {
    let ch = with_channel(store, &["blue", "red"]);
    let m1 = env(ch, MessageId::random(), "blue", "red", 1);
    let m2 = env(ch, MessageId::random(), "blue", "red", 2);
    let s1 = store
        .post(std::slice::from_ref(&m1), T0, &Quota::NONE)
        .unwrap();
    store
        .post(std::slice::from_ref(&m2), T0, &Quota::NONE)
        .unwrap();
    let c1 = s1[0].cursor;
    let last = store.mailbox(&h("red"), 0, 10).unwrap()[1].cursor;
    assert!(matches!(
        store.ack(&h("red"), last + 1),
        Err(StoreError::AckBeyondMailbox { .. })
    ));
    assert_eq!(store.ack(&h("red"), c1).unwrap(), 1);
    let left = store.mailbox(&h("red"), 0, 10).unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].envelope, m2);
    // The acked message posted again is not delivered again...
    assert!(store
        .post(std::slice::from_ref(&m1), T0, &Quota::NONE)
        .unwrap()
        .is_empty());
    // ...and different bytes under its id are still refused.
    let forged = Envelope {
        ciphertext: vec![0xee; 64],
        ..m1.clone()
    };
    assert!(matches!(
        store.post(&[forged], T0, &Quota::NONE),
        Err(StoreError::Conflict { .. })
    ));
    assert_eq!(store.ack(&h("red"), last).unwrap(), 1);
    let m3 = env(ch, MessageId::random(), "blue", "red", 3);
    let s3 = store.post(&[m3], T0, &Quota::NONE).unwrap();
    assert!(
        s3[0].cursor > last,
        "cursors are never reused after deletes"
    );
    assert_eq!(store.row_counts().unwrap().envelopes, 1);
}

/// The relay records each principal's highest ack and latest post per
/// channel (a re-post of the same bytes changes nothing).
pub fn own_record_follows_acks_and_posts(store: &dyn RelayStore) {
    let ch = with_channel(store, &["blue", "red"]);
    let empty = store.own_record(&h("blue")).unwrap();
    assert_eq!((empty.acked_through, empty.last_posts.len()), (0, 0));
    let m1 = env(ch, MessageId::random(), "blue", "red", 1);
    let m2 = env(ch, MessageId::random(), "blue", "red", 2);
    store
        .post(std::slice::from_ref(&m1), T0, &Quota::NONE)
        .unwrap();
    store
        .post(std::slice::from_ref(&m2), T0, &Quota::NONE)
        .unwrap();
    store
        .post(std::slice::from_ref(&m1), T0, &Quota::NONE)
        .unwrap();
    let blue = store.own_record(&h("blue")).unwrap();
    assert_eq!(blue.last_posts, [(ch, m2.message_id, m2.seq_hint)]);
    let last = store.mailbox(&h("red"), 0, 10).unwrap()[1].cursor;
    store.ack(&h("red"), last).unwrap();
    store.ack(&h("red"), 1.min(last)).unwrap();
    assert_eq!(store.own_record(&h("red")).unwrap().acked_through, last);
    assert!(matches!(
        store.own_record(&h("nobody")),
        Err(StoreError::UnknownPrincipal(_))
    ));
}

/// Only a released handle registers again: with new keys, the next key
/// version, and nothing of the old device left but its last posts.
pub fn a_released_handle_registers_again_with_new_keys(store: &dyn RelayStore) {
    let ch = with_channel(store, &["blue", "red"]);
    let old = store.principal(&h("blue")).unwrap().unwrap();
    let taken = store.register(&h("blue"), &keys(), T0, None);
    assert!(matches!(taken, Err(StoreError::HandleTaken(_))));
    store
        .post(
            &[env(ch, MessageId::random(), "blue", "red", 1)],
            T0,
            &Quota::NONE,
        )
        .unwrap();
    store
        .post(
            &[env(ch, MessageId::random(), "red", "blue", 2)],
            T0,
            &Quota::NONE,
        )
        .unwrap();
    let last = store.mailbox(&h("blue"), 0, 10).unwrap()[0].cursor;
    store.ack(&h("blue"), last).unwrap();
    store
        .post(
            &[env(ch, MessageId::random(), "red", "blue", 3)],
            T0,
            &Quota::NONE,
        )
        .unwrap();
    assert!(store.release_principal(&h("blue")).unwrap());
    assert!(!store.release_principal(&h("nobody")).unwrap());
    // Released, the old device is nobody: no login, no keys, no claims.
    assert_eq!(store.principal(&h("blue")).unwrap(), None);
    assert!(store.mailbox(&h("blue"), 0, 10).unwrap().is_empty());
    let record = store.own_record(&h("blue")).unwrap();
    assert_eq!((record.acked_through, record.last_posts.len()), (0, 1));
    let new_keys = keys();
    let again = store.register(&h("blue"), &new_keys, T0, None).unwrap();
    assert_eq!(again.keys, new_keys);
    assert!(again.key_version > old.key_version);
    assert_eq!(store.principal(&h("blue")).unwrap().unwrap(), again);
    assert!(matches!(
        store.register(&h("blue"), &keys(), T0, None),
        Err(StoreError::HandleTaken(_))
    ));
    // Routing is untouched: the channel still reaches the handle.
    store
        .post(
            &[env(ch, MessageId::random(), "red", "blue", 4)],
            T0,
            &Quota::NONE,
        )
        .unwrap();
    assert_eq!(store.mailbox(&h("blue"), 0, 10).unwrap().len(), 1);
}

pub fn expired_credentials_are_purged(store: &dyn RelayStore) {
    store
        .put_challenge(&[1; 32], &h("blue"), Timestamp(10))
        .unwrap();
    store
        .put_challenge(&[2; 32], &h("blue"), Timestamp(30))
        .unwrap();
    store
        .put_token(&Digest::of(&[b"a"]), &h("blue"), Timestamp(10))
        .unwrap();
    assert_eq!(store.purge_expired(Timestamp(20), Timestamp(0)).unwrap(), 2);
    let counts = store.row_counts().unwrap();
    assert_eq!((counts.challenges, counts.tokens), (1, 0));
}

pub fn exchanges_release_together_or_are_destroyed(store: &dyn RelayStore) {
    let ch = with_channel(store, &["mediator", "blue", "red"]);
    let make = |deadline: i64| ExchangeRecord {
        id: backchannel_protocol::ExchangeId::random(),
        channel_id: ch,
        created_by: h("mediator"),
        participants: vec![h("blue"), h("red")],
        terms_digest: Digest::of(&[b"terms"]),
        deadline: Timestamp(deadline),
        state: ExchangeState::Open,
        released_at: None,
    };
    let copy = |from: &str, to: &str, fill: u8| OfferCopy {
        submitter: h(from),
        recipient: h(to),
        olm_type: OlmType::PreKey,
        ciphertext: vec![fill; 48],
    };
    let e = make(T0.0 + 10_000);
    store.create_exchange(&e, T0).unwrap();
    assert!(store.create_exchange(&e, T0).is_err(), "an id is used once");
    let after_blue = store
        .submit_offer(&e.id, &[copy("blue", "red", 1)], T0)
        .unwrap();
    assert_eq!(after_blue.state, ExchangeState::Open);
    assert!(store.has_offer(&e.id, &h("blue")).unwrap());
    store.withdraw_offer(&e.id, &h("blue")).unwrap();
    assert!(!store.has_offer(&e.id, &h("blue")).unwrap());
    store
        .submit_offer(&e.id, &[copy("blue", "red", 2)], T0)
        .unwrap();
    let done = store
        .submit_offer(&e.id, &[copy("red", "blue", 3)], Timestamp(T0.0 + 1))
        .unwrap();
    assert_eq!(
        (done.state, done.released_at),
        (ExchangeState::Released, Some(Timestamp(T0.0 + 1)))
    );
    assert_eq!(
        store.offers_for(&e.id, &h("red")).unwrap(),
        vec![copy("blue", "red", 2)]
    );
    assert!(
        store.withdraw_offer(&e.id, &h("blue")).is_err(),
        "no withdrawal after release"
    );

    let late = make(T0.0 + 100);
    store.create_exchange(&late, T0).unwrap();
    store
        .submit_offer(&late.id, &[copy("blue", "red", 4)], T0)
        .unwrap();
    assert!(matches!(
        store.submit_offer(&late.id, &[copy("red", "blue", 5)], Timestamp(T0.0 + 100)),
        Err(StoreError::ExchangeClosed(_))
    ));
    assert_eq!(store.destroy_expired(Timestamp(T0.0 + 100)).unwrap(), 1);
    assert_eq!(
        store.exchange(&late.id).unwrap().unwrap().state,
        ExchangeState::Destroyed
    );
    assert!(
        !store.has_offer(&late.id, &h("blue")).unwrap(),
        "the sealed offer is gone"
    );
    assert_eq!(
        store.exchange(&e.id).unwrap().unwrap().state,
        ExchangeState::Released,
        "released ones stay"
    );
}

/// An invitation is consumed by the registration it admits, and only then;
/// an expired or unknown one admits nobody.
pub fn invitations_are_single_use_and_expire(store: &dyn RelayStore) {
    let code = Digest::of(&[b"invite-1"]);
    store.create_invite(&code, Timestamp(T0.0 + 1_000)).unwrap();
    let unknown = Digest::of(&[b"invite-2"]);
    assert!(matches!(
        store.register(&h("blue"), &keys(), T0, Some(&unknown)),
        Err(StoreError::InviteInvalid)
    ));
    // A registration refused for another reason keeps the code.
    store.register(&h("taken"), &keys(), T0, None).unwrap();
    assert!(matches!(
        store.register(&h("taken"), &keys(), T0, Some(&code)),
        Err(StoreError::HandleTaken(_))
    ));
    store
        .register(&h("blue"), &keys(), T0, Some(&code))
        .unwrap();
    assert!(matches!(
        store.register(&h("red"), &keys(), T0, Some(&code)),
        Err(StoreError::InviteInvalid)
    ));
    let late = Digest::of(&[b"invite-3"]);
    store.create_invite(&late, Timestamp(T0.0 + 10)).unwrap();
    assert!(matches!(
        store.register(&h("red"), &keys(), Timestamp(T0.0 + 10), Some(&late)),
        Err(StoreError::InviteInvalid)
    ));
}

/// A mailbox holds at most its count and bytes, and one sender at most its
/// share of them: the others can still reach it.
pub fn mailboxes_are_bounded_with_a_share_per_sender(store: &dyn RelayStore) {
    let ch = with_channel(store, &["blue", "red", "green"]);
    let quota = Quota {
        mailbox_envelopes: 4,
        mailbox_bytes: u64::MAX,
        sender_share_percent: 50,
        sender_storage_bytes: u64::MAX,
    };
    let post =
        |from: &str, to: &str| store.post(&[env(ch, MessageId::random(), from, to, 1)], T0, &quota);
    post("blue", "red").unwrap();
    post("blue", "red").unwrap();
    assert!(
        matches!(post("blue", "red"), Err(StoreError::Quota(_))),
        "blue's share is 2"
    );
    post("green", "red").unwrap();
    post("green", "red").unwrap();
    assert!(
        matches!(post("green", "red"), Err(StoreError::Quota(_))),
        "the mailbox holds 4"
    );
    post("blue", "green").unwrap();
    // Acknowledging frees the room.
    let page = store.mailbox(&h("red"), 0, 10).unwrap();
    store.ack(&h("red"), page[0].cursor).unwrap();
    post("blue", "red").unwrap();
    let bytes = Quota {
        mailbox_envelopes: u64::MAX,
        mailbox_bytes: 150,
        ..quota
    };
    // env() carries 64 bytes of ciphertext: two fit in 150, a third does not.
    let ch2 = with_channel(store, &["amber", "teal", "plum"]);
    let post2 = |from: &str| {
        store.post(
            &[env(ch2, MessageId::random(), from, "teal", 1)],
            T0,
            &bytes,
        )
    };
    post2("amber").unwrap();
    assert!(
        matches!(post2("amber"), Err(StoreError::Quota(_))),
        "share is 75 bytes"
    );
    post2("plum").unwrap();
    assert!(matches!(post2("plum"), Err(StoreError::Quota(_))));
}

/// A sender's stored bytes count its envelopes still waiting anywhere.
pub fn a_senders_storage_is_bounded(store: &dyn RelayStore) {
    let ch = with_channel(store, &["blue", "red", "green"]);
    let quota = Quota {
        sender_storage_bytes: 200,
        ..Quota::NONE
    };
    let m = MessageId::random();
    store
        .post(
            &[env(ch, m, "blue", "red", 1), env(ch, m, "blue", "green", 1)],
            T0,
            &quota,
        )
        .unwrap();
    assert_eq!(store.stored_bytes(&h("blue")).unwrap(), 128);
    let again = MessageId::random();
    assert!(matches!(
        store.post(
            &[
                env(ch, again, "blue", "red", 1),
                env(ch, again, "blue", "green", 1)
            ],
            T0,
            &quota
        ),
        Err(StoreError::Quota(_))
    ));
    let page = store.mailbox(&h("red"), 0, 10).unwrap();
    store.ack(&h("red"), page[0].cursor).unwrap();
    assert_eq!(store.stored_bytes(&h("blue")).unwrap(), 64);
    let usage = store.usage().unwrap();
    assert_eq!(
        (usage.envelopes, usage.bytes, usage.deepest_mailbox),
        (1, 64, 1)
    );
}

/// A post retried after its answer was lost is answered as a duplicate, even
/// when the envelopes it already stored fill the sender's quota: counting them
/// twice would refuse the retry, and the client would never learn it landed.
pub fn a_retry_at_the_sender_quota_is_idempotent(store: &dyn RelayStore) {
    let ch = with_channel(store, &["blue", "red", "green"]);
    let quota = Quota {
        sender_storage_bytes: 128,
        ..Quota::NONE
    };
    let m = MessageId::random();
    let post = [env(ch, m, "blue", "red", 1), env(ch, m, "blue", "green", 1)];
    assert_eq!(store.post(&post, T0, &quota).unwrap().len(), 2);
    assert!(
        store.post(&post, T0, &quota).unwrap().is_empty(),
        "the retry stores nothing new"
    );
    assert!(matches!(
        store.post(
            &[env(ch, MessageId::random(), "blue", "red", 2)],
            T0,
            &quota
        ),
        Err(StoreError::Quota(_))
    ));
    assert_eq!(store.stored_bytes(&h("blue")).unwrap(), 128);
}

/// A window counts up to its limit, refuses until it ends, then reopens.
pub fn rate_windows_count_and_reopen(store: &dyn RelayStore) {
    let rate = Rate::new(2, 1_000);
    assert_eq!(
        store.hit("logins:blue", rate, T0).unwrap(),
        RateDecision::Allowed
    );
    assert_eq!(
        store
            .hit("logins:blue", rate, Timestamp(T0.0 + 10))
            .unwrap(),
        RateDecision::Allowed
    );
    assert_eq!(
        store
            .hit("logins:blue", rate, Timestamp(T0.0 + 20))
            .unwrap(),
        RateDecision::Limited {
            until: Timestamp(T0.0 + 1_000)
        }
    );
    assert_eq!(
        store.hit("logins:red", rate, Timestamp(T0.0 + 20)).unwrap(),
        RateDecision::Allowed
    );
    assert_eq!(
        store
            .hit("logins:blue", rate, Timestamp(T0.0 + 1_000))
            .unwrap(),
        RateDecision::Allowed
    );
    // Ended windows are purged.
    store
        .purge_expired(Timestamp(T0.0 + 5_000), Timestamp(0))
        .unwrap();
    assert_eq!(
        store
            .hit("logins:blue", rate, Timestamp(T0.0 + 5_000))
            .unwrap(),
        RateDecision::Allowed
    );
}

/// A post counts its windows in its own transaction: the first full one
/// (in the order given) refuses it with nothing stored or counted, and
/// each copy comes back with its own recipient's cursor.
pub fn a_post_counts_its_rate_windows_first(store: &dyn RelayStore) {
    let ch = with_channel(store, &["mediator", "blue", "red"]);
    let counts = [
        ("posts/ip:127.0.0.1".to_owned(), Rate::new(100, 60_000)),
        ("posts/principal:blue".to_owned(), Rate::new(2, 60_000)),
    ];
    let m = MessageId::random();
    let copies = [
        env(ch, m, "blue", "red", 1),
        env(ch, m, "blue", "mediator", 2),
    ];
    let stored = store
        .post_counted(&copies, T0, &Quota::NONE, &counts)
        .unwrap();
    for (copy, s) in copies.iter().zip(&stored) {
        assert_eq!(&s.envelope, copy);
        let mailbox = store.mailbox(&copy.recipient, 0, 10).unwrap();
        assert_eq!(mailbox.len(), 1);
        assert_eq!(
            mailbox[0].cursor, s.cursor,
            "the cursor of {}'s copy",
            copy.recipient
        );
    }
    let second = [env(ch, MessageId::random(), "blue", "red", 3)];
    assert_eq!(
        store
            .post_counted(&second, T0, &Quota::NONE, &counts)
            .unwrap()
            .len(),
        1
    );
    let before = store.row_counts().unwrap();
    let third = [env(ch, MessageId::random(), "blue", "red", 4)];
    for _ in 0..2 {
        match store.post_counted(&third, Timestamp(T0.0 + 10), &Quota::NONE, &counts) {
            Err(StoreError::RateLimited { bucket, until }) => {
                assert_eq!(bucket, "posts/principal:blue");
                assert_eq!(until, Timestamp(T0.0 + 60_000));
            }
            other => panic!("the third post in the window was not refused: {other:?}"),
        }
        assert_eq!(
            store.row_counts().unwrap(),
            before,
            "a refused post stores nothing"
        );
    }
    // The refused attempts were not counted: the address window took
    // two posts of its hundred, and both windows reopen together.
    assert_eq!(
        store
            .hit(
                "posts/ip:127.0.0.1",
                Rate::new(3, 60_000),
                Timestamp(T0.0 + 20)
            )
            .unwrap(),
        RateDecision::Allowed
    );
    assert_eq!(
        store
            .post_counted(&third, Timestamp(T0.0 + 60_000), &Quota::NONE, &counts)
            .unwrap()
            .len(),
        1
    );
}

/// Asked for the fallback key, the store serves it even while one-time
/// keys are held, and reports that it was handed out until a new upload.
pub fn the_fallback_key_can_be_asked_for_and_its_claim_is_reported(store: &dyn RelayStore) {
    let mut id = Identity::new();
    store.register(&h("red"), &id.keys(), T0, None).unwrap();
    let keys = id.generate_one_time_keys(2);
    let fallback = id.generate_fallback_key().unwrap();
    store
        .upload_keys(&h("red"), &keys, Some(&fallback), false)
        .unwrap();
    let stock = store.key_stock(&h("red")).unwrap();
    assert_eq!(
        (
            stock.one_time_keys,
            stock.has_fallback,
            stock.fallback_claimed
        ),
        (2, true, false)
    );
    let c = store.claim_key(&h("red"), false).unwrap().unwrap();
    assert!(c.key.fallback);
    let stock = store.key_stock(&h("red")).unwrap();
    assert_eq!((stock.one_time_keys, stock.fallback_claimed), (2, true));
    let next = id.generate_fallback_key().unwrap();
    store
        .upload_keys(&h("red"), &[], Some(&next), false)
        .unwrap();
    assert!(!store.key_stock(&h("red")).unwrap().fallback_claimed);
}

/// Envelopes left unfetched past the retention limit are deleted.
pub fn unfetched_envelopes_leave_after_the_retention_limit(store: &dyn RelayStore) {
    let ch = with_channel(store, &["blue", "red"]);
    store
        .post(
            &[env(ch, MessageId::random(), "blue", "red", 1)],
            T0,
            &Quota::NONE,
        )
        .unwrap();
    let later = Timestamp(T0.0 + 100);
    store
        .post(
            &[env(ch, MessageId::random(), "blue", "red", 2)],
            later,
            &Quota::NONE,
        )
        .unwrap();
    store.purge_expired(later, Timestamp(T0.0 + 1)).unwrap();
    let left = store.mailbox(&h("red"), 0, 10).unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].received_at, later);
    assert_eq!(store.usage().unwrap().envelopes, 1);
}

/// Runs `f(i, store)` on `n` threads at once, alternating the two stores.
fn at_once<T: Send>(
    a: &dyn RelayStore,
    b: &dyn RelayStore,
    n: usize,
    f: impl Fn(usize, &dyn RelayStore) -> T + Sync,
) -> Vec<T> {
    let start = std::sync::Barrier::new(n);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .map(|i| {
                let (start, f) = (&start, &f);
                let store = if i % 2 == 0 { a } else { b };
                s.spawn(move || {
                    start.wait();
                    f(i, store)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

/// A login challenge taken on two instances at once is given to one.
pub fn two_instances_take_a_challenge_once(a: &dyn RelayStore, b: &dyn RelayStore) {
    for round in 0..20u8 {
        let c = [round; 32];
        a.put_challenge(&c, &h("blue"), Timestamp(T0.0 + 60_000))
            .unwrap();
        let taken = at_once(a, b, 4, |_, s| s.take_challenge(&c).unwrap());
        assert_eq!(taken.iter().filter(|t| t.is_some()).count(), 1, "{taken:?}");
    }
}

/// One post sent to both instances at once (a client's retry after a
/// lost answer, landing on the other instance) is stored once.
pub fn two_instances_store_a_post_once(a: &dyn RelayStore, b: &dyn RelayStore) {
    let ch = with_channel(a, &["blue", "red", "green"]);
    for _ in 0..20 {
        let m = MessageId::random();
        let post = [env(ch, m, "blue", "red", 1), env(ch, m, "blue", "green", 1)];
        let stored = at_once(a, b, 4, |_, s| {
            s.post(&post, T0, &Quota::NONE).unwrap().len()
        });
        assert_eq!(stored.iter().sum::<usize>(), 2, "{stored:?}");
        assert!(
            stored.iter().all(|n| *n == 0 || *n == 2),
            "atomic: {stored:?}"
        );
    }
    assert_eq!(b.mailbox(&h("red"), 0, 100).unwrap().len(), 20);
}

/// The last two offers arriving on two instances at once release the
/// exchange exactly once; a deadline passing during submissions destroys
/// it or lets it release, never both.
pub fn two_instances_release_an_exchange_once(a: &dyn RelayStore, b: &dyn RelayStore) {
    let ch = with_channel(a, &["blue", "red"]);
    let copy = |from: &str, to: &str| OfferCopy {
        submitter: h(from),
        recipient: h(to),
        olm_type: OlmType::PreKey,
        ciphertext: vec![9; 32],
    };
    for round in 0..10 {
        let deadline = Timestamp(T0.0 + 1_000);
        let e = ExchangeRecord {
            id: backchannel_protocol::ExchangeId::random(),
            channel_id: ch,
            created_by: h("blue"),
            participants: vec![h("blue"), h("red")],
            terms_digest: Digest::of(&[b"terms"]),
            deadline,
            state: ExchangeState::Open,
            released_at: None,
        };
        a.create_exchange(&e, T0).unwrap();
        let offers = [vec![copy("blue", "red")], vec![copy("red", "blue")]];
        let odd = round % 2 == 1;
        let results = at_once(a, b, 3, |i, s| match i {
            2 if odd => Err(s.destroy_expired(deadline).unwrap()),
            2 => Err(0),
            _ => Ok(s.submit_offer(&e.id, &offers[i], T0).map(|r| r.state)),
        });
        let released = results
            .iter()
            .filter(|r| matches!(r, Ok(Ok(ExchangeState::Released))))
            .count();
        let destroyed: u64 = results.iter().filter_map(|r| r.as_ref().err()).sum();
        let now = a.exchange(&e.id).unwrap().unwrap().state;
        match now {
            ExchangeState::Released => {
                assert_eq!((released, destroyed), (1, 0), "{results:?}");
                assert_eq!(b.offers_for(&e.id, &h("red")).unwrap().len(), 1);
            }
            ExchangeState::Destroyed => {
                assert_eq!((released, destroyed), (0, 1), "{results:?}");
                for who in ["blue", "red"] {
                    assert!(
                        !b.has_offer(&e.id, &h(who)).unwrap(),
                        "destroyed offers stay gone"
                    );
                }
            }
            ExchangeState::Open => panic!("both offers were submitted: {results:?}"),
        }
    }
}

/// A mailbox limit holds across instances: posts racing on both stop at it.
pub fn two_instances_count_one_quota(a: &dyn RelayStore, b: &dyn RelayStore) {
    let ch = with_channel(a, &["blue", "red"]);
    let quota = Quota {
        mailbox_envelopes: 10,
        ..Quota::NONE
    };
    let results = at_once(a, b, 8, |i, s| {
        (0..4)
            .map(|n| {
                s.post(
                    &[env(
                        ch,
                        MessageId::random(),
                        "blue",
                        "red",
                        (i * 4 + n) as u8,
                    )],
                    T0,
                    &quota,
                )
                .is_ok()
            })
            .filter(|ok| *ok)
            .count()
    });
    assert_eq!(results.iter().sum::<usize>(), 10, "{results:?}");
    assert_eq!(a.usage().unwrap().envelopes, 10);
}

/// A reader following a mailbox from its last cursor while two instances
/// post to it misses nothing: a cursor is never committed behind a larger
/// one the reader already passed.
pub fn two_instances_keep_cursor_order_for_readers(a: &dyn RelayStore, b: &dyn RelayStore) {
    let ch = with_channel(a, &["blue", "green", "red"]);
    let writers = 4;
    let each = 50;
    let done = std::sync::atomic::AtomicUsize::new(0);
    let seen = std::thread::scope(|s| {
        for w in 0..writers {
            let store = if w % 2 == 0 { a } else { b };
            let done = &done;
            s.spawn(move || {
                let from = if w % 2 == 0 { "blue" } else { "green" };
                for n in 0..each {
                    store
                        .post(
                            &[env(ch, MessageId::random(), from, "red", n as u8)],
                            T0,
                            &Quota::NONE,
                        )
                        .unwrap();
                }
                done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            });
        }
        let reader = s.spawn(|| {
            let (mut after, mut seen) = (0, 0);
            loop {
                let finished = done.load(std::sync::atomic::Ordering::SeqCst) == writers;
                let page = b.mailbox(&h("red"), after, 1000).unwrap();
                for e in &page {
                    assert!(e.cursor > after);
                    after = e.cursor;
                }
                seen += page.len();
                if finished && page.is_empty() {
                    return seen;
                }
            }
        });
        reader.join().unwrap()
    });
    assert_eq!(
        seen,
        writers * each,
        "the reader skipped envelopes committed behind its cursor"
    );
}

/// A rate window counted on two instances at once is one window.
pub fn two_instances_count_one_rate_window(a: &dyn RelayStore, b: &dyn RelayStore) {
    let rate = Rate::new(10, 60_000);
    let allowed = at_once(a, b, 8, |_, s| {
        (0..5)
            .filter(|_| s.hit("posts:blue", rate, T0).unwrap() == RateDecision::Allowed)
            .count()
    });
    assert_eq!(allowed.iter().sum::<usize>(), 10, "{allowed:?}");
}
