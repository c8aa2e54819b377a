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

use super::{ChannelRecord, ExchangeRecord, ExchangeState, OfferCopy, RelayStore, StoreError};

/// Generates one `#[test]` per conformance check for a backend.
#[macro_export]
macro_rules! relay_store_conformance {
    ($make:expr) => {
        $crate::relay_store_conformance!(@tests $make;
            register_and_look_up, challenges_are_single_use, tokens_round_trip,
            keys_are_claimed_once_then_fallback, key_stock_is_limited,
            channels_are_routing_records, post_is_atomic_and_idempotent,
            mailbox_pages_in_cursor_order, ack_deletes_and_cursors_never_repeat,
            expired_credentials_are_purged, exchanges_release_together_or_are_destroyed,
            own_record_follows_acks_and_posts, a_released_handle_registers_again_with_new_keys);
    };
    (@tests $make:expr; $($name:ident),*) => {
        $(
            #[test]
            fn $name() {
                let (store, _guard) = ($make)();
                $crate::store::conformance::$name(&store);
            }
        )*
    };
}

const T0: Timestamp = Timestamp(1_750_000_000_000);

fn h(s: &str) -> Handle {
    Handle::new(s).unwrap()
}

fn keys() -> IdentityKeys {
    Identity::new().keys()
}

fn env(channel: ChannelId, message: MessageId, from: &str, to: &str, fill: u8) -> Envelope {
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

fn with_channel(store: &dyn RelayStore, members: &[&str]) -> ChannelId {
    for m in members {
        store.register(&h(m), &keys(), T0).unwrap();
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
    let rec = store.register(&h("blue"), &k, T0).unwrap();
    assert_eq!(rec.key_version, 1);
    assert_eq!(store.principal(&h("blue")).unwrap(), Some(rec));
    assert!(matches!(
        store.register(&h("blue"), &keys(), T0),
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
            store.register(&h("mallory"), &taken, T0),
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
    store.register(&h("red"), &id.keys(), T0).unwrap();
    assert_eq!(store.claim_key(&h("red")).unwrap(), None, "no keys yet");
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
        let c = store.claim_key(&h("red")).unwrap().unwrap();
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
    let c = store.claim_key(&h("red")).unwrap().unwrap();
    assert_eq!(c.key, new[0], "a claim gets the new key");
}

pub fn key_stock_is_limited(store: &dyn RelayStore) {
    let mut id = Identity::new();
    store.register(&h("red"), &id.keys(), T0).unwrap();
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
    store.register(&h("green"), &keys(), T0).unwrap();
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
    let first = store.post(&copies, T0).unwrap();
    assert_eq!(first.len(), 2);
    assert!(
        store.post(&copies, T0).unwrap().is_empty(),
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
        store.post(&mixed, T0),
        Err(StoreError::Conflict { .. })
    ));
    assert_eq!(
        store.row_counts().unwrap(),
        before,
        "a refused post stores nothing"
    );
    assert!(matches!(
        store.post(&[env(ch, m2, "red", "ghost", 3)], T0),
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
    let s1 = store.post(std::slice::from_ref(&m1), T0).unwrap();
    store.post(std::slice::from_ref(&m2), T0).unwrap();
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
        .post(std::slice::from_ref(&m1), T0)
        .unwrap()
        .is_empty());
    // ...and different bytes under its id are still refused.
    let forged = Envelope {
        ciphertext: vec![0xee; 64],
        ..m1.clone()
    };
    assert!(matches!(
        store.post(&[forged], T0),
        Err(StoreError::Conflict { .. })
    ));
    assert_eq!(store.ack(&h("red"), last).unwrap(), 1);
    let m3 = env(ch, MessageId::random(), "blue", "red", 3);
    let s3 = store.post(&[m3], T0).unwrap();
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
    store.post(std::slice::from_ref(&m1), T0).unwrap();
    store.post(std::slice::from_ref(&m2), T0).unwrap();
    store.post(std::slice::from_ref(&m1), T0).unwrap();
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
    let taken = store.register(&h("blue"), &keys(), T0);
    assert!(matches!(taken, Err(StoreError::HandleTaken(_))));
    store
        .post(&[env(ch, MessageId::random(), "blue", "red", 1)], T0)
        .unwrap();
    store
        .post(&[env(ch, MessageId::random(), "red", "blue", 2)], T0)
        .unwrap();
    let last = store.mailbox(&h("blue"), 0, 10).unwrap()[0].cursor;
    store.ack(&h("blue"), last).unwrap();
    store
        .post(&[env(ch, MessageId::random(), "red", "blue", 3)], T0)
        .unwrap();
    assert!(store.release_principal(&h("blue")).unwrap());
    assert!(!store.release_principal(&h("nobody")).unwrap());
    // Released, the old device is nobody: no login, no keys, no claims.
    assert_eq!(store.principal(&h("blue")).unwrap(), None);
    assert!(store.mailbox(&h("blue"), 0, 10).unwrap().is_empty());
    let record = store.own_record(&h("blue")).unwrap();
    assert_eq!((record.acked_through, record.last_posts.len()), (0, 1));
    let new_keys = keys();
    let again = store.register(&h("blue"), &new_keys, T0).unwrap();
    assert_eq!(again.keys, new_keys);
    assert!(again.key_version > old.key_version);
    assert_eq!(store.principal(&h("blue")).unwrap().unwrap(), again);
    assert!(matches!(
        store.register(&h("blue"), &keys(), T0),
        Err(StoreError::HandleTaken(_))
    ));
    // Routing is untouched: the channel still reaches the handle.
    store
        .post(&[env(ch, MessageId::random(), "red", "blue", 4)], T0)
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
    assert_eq!(store.purge_expired(Timestamp(20)).unwrap(), 2);
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
