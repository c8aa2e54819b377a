//! A relay that attacks its users (ATTACKS.md), for tests only: it edits the
//! real relay's database behind the API (as an operator could) and, for
//! rollbacks, serves stale mailbox entries through a storage wrapper.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use backchannel_protocol::{
    ChannelId, Digest, Envelope, ExchangeId, Handle, IdentityKeys, MessageId, OlmType, SignedKey,
    Timestamp,
};
use backchannel_relay::store::{
    ChannelRecord, Claimed, ExchangeRecord, KeyCounts, KeyStock, OfferCopy, PrincipalRecord, Quota,
    Rate, RateDecision, RelayStore, RowCounts, StoreError, StoredEnvelope, Usage, WriteCounts,
};
use rusqlite::{params, Connection, OptionalExtension};

type Stale = Arc<Mutex<Vec<StoredEnvelope>>>;

/// The real store, with stale entries served first when asked.
pub struct TamperStore {
    inner: Box<dyn RelayStore>,
    stale: Stale,
    /// Whether each call runs on a thread of its own: PostgreSQL's
    /// synchronous client may not block inside an async test, which
    /// calls the store directly.
    apart: bool,
}

impl TamperStore {
    /// Wraps `inner`; `apart` for a store that must not run inside an
    /// async runtime's thread.
    pub fn new(inner: Box<dyn RelayStore>, stale: Stale, apart: bool) -> Self {
        TamperStore {
            inner,
            stale,
            apart,
        }
    }

    fn run<T: Send>(&self, f: impl FnOnce(&dyn RelayStore) -> T + Send) -> T {
        if !self.apart {
            return f(&*self.inner);
        }
        std::thread::scope(|s| match s.spawn(|| f(&*self.inner)).join() {
            Ok(v) => v,
            Err(panic) => std::panic::resume_unwind(panic),
        })
    }
}

impl RelayStore for TamperStore {
    fn register(
        &self,
        h: &Handle,
        k: &IdentityKeys,
        now: Timestamp,
        invite: Option<&Digest>,
    ) -> Result<PrincipalRecord, StoreError> {
        self.run(|s| s.register(h, k, now, invite))
    }
    fn create_invite(&self, code: &Digest, expires: Timestamp) -> Result<(), StoreError> {
        self.run(|s| s.create_invite(code, expires))
    }
    fn release_principal(&self, h: &Handle) -> Result<bool, StoreError> {
        self.run(|s| s.release_principal(h))
    }
    fn principal(&self, h: &Handle) -> Result<Option<PrincipalRecord>, StoreError> {
        self.run(|s| s.principal(h))
    }
    fn put_challenge(&self, c: &[u8; 32], h: &Handle, e: Timestamp) -> Result<(), StoreError> {
        self.run(|s| s.put_challenge(c, h, e))
    }
    fn take_challenge(&self, c: &[u8; 32]) -> Result<Option<(Handle, Timestamp)>, StoreError> {
        self.run(|s| s.take_challenge(c))
    }
    fn put_token(&self, t: &Digest, h: &Handle, e: Timestamp) -> Result<(), StoreError> {
        self.run(|s| s.put_token(t, h, e))
    }
    fn token(&self, t: &Digest) -> Result<Option<(Handle, Timestamp)>, StoreError> {
        self.run(|s| s.token(t))
    }
    fn upload_keys(
        &self,
        h: &Handle,
        o: &[SignedKey],
        f: Option<&SignedKey>,
        replace: bool,
    ) -> Result<KeyCounts, StoreError> {
        self.run(|s| s.upload_keys(h, o, f, replace))
    }
    fn claim_key(&self, h: &Handle, one_time: bool) -> Result<Option<Claimed>, StoreError> {
        self.run(|s| s.claim_key(h, one_time))
    }
    fn key_stock(&self, h: &Handle) -> Result<KeyStock, StoreError> {
        self.run(|s| s.key_stock(h))
    }
    fn create_channel(&self, c: &ChannelRecord) -> Result<(), StoreError> {
        self.run(|s| s.create_channel(c))
    }
    fn channel(&self, id: &ChannelId) -> Result<Option<ChannelRecord>, StoreError> {
        self.run(|s| s.channel(id))
    }
    fn set_channel_members(&self, id: &ChannelId, members: &[Handle]) -> Result<(), StoreError> {
        self.run(|s| s.set_channel_members(id, members))
    }
    fn create_exchange(&self, e: &ExchangeRecord, now: Timestamp) -> Result<(), StoreError> {
        self.run(|s| s.create_exchange(e, now))
    }
    fn exchange(&self, id: &ExchangeId) -> Result<Option<ExchangeRecord>, StoreError> {
        self.run(|s| s.exchange(id))
    }
    fn submit_offer(
        &self,
        id: &ExchangeId,
        c: &[OfferCopy],
        now: Timestamp,
    ) -> Result<ExchangeRecord, StoreError> {
        self.run(|s| s.submit_offer(id, c, now))
    }
    fn withdraw_offer(&self, id: &ExchangeId, who: &Handle) -> Result<ExchangeRecord, StoreError> {
        self.run(|s| s.withdraw_offer(id, who))
    }
    fn has_offer(&self, id: &ExchangeId, who: &Handle) -> Result<bool, StoreError> {
        self.run(|s| s.has_offer(id, who))
    }
    fn offers_for(&self, id: &ExchangeId, r: &Handle) -> Result<Vec<OfferCopy>, StoreError> {
        self.run(|s| s.offers_for(id, r))
    }
    fn destroy_expired(&self, now: Timestamp) -> Result<u64, StoreError> {
        self.run(|s| s.destroy_expired(now))
    }
    fn post_counted(
        &self,
        e: &[Envelope],
        now: Timestamp,
        quota: &Quota,
        counts: &[(String, Rate)],
    ) -> Result<Vec<StoredEnvelope>, StoreError> {
        self.run(|s| s.post_counted(e, now, quota, counts))
    }
    fn mailbox(
        &self,
        r: &Handle,
        after: u64,
        limit: usize,
    ) -> Result<Vec<StoredEnvelope>, StoreError> {
        let mut stale = self.stale.lock().unwrap_or_else(|p| p.into_inner());
        let (mine, others): (Vec<_>, Vec<_>) =
            stale.drain(..).partition(|s| s.envelope.recipient == *r);
        *stale = others;
        let mut out = mine;
        out.extend(self.run(|s| s.mailbox(r, after, limit))?);
        Ok(out)
    }
    fn ack(&self, r: &Handle, through: u64) -> Result<u64, StoreError> {
        self.run(|s| s.ack(r, through))
    }
    fn own_record(&self, who: &Handle) -> Result<backchannel_relay::store::OwnRecord, StoreError> {
        self.run(|s| s.own_record(who))
    }
    fn purge_expired(&self, now: Timestamp, unfetched: Timestamp) -> Result<u64, StoreError> {
        self.run(|s| s.purge_expired(now, unfetched))
    }
    fn hit(&self, bucket: &str, rate: Rate, now: Timestamp) -> Result<RateDecision, StoreError> {
        self.run(|s| s.hit(bucket, rate, now))
    }
    fn stored_bytes(&self, who: &Handle) -> Result<u64, StoreError> {
        self.run(|s| s.stored_bytes(who))
    }
    fn usage(&self) -> Result<Usage, StoreError> {
        self.run(|s| s.usage())
    }
    fn free_space(&self) -> Result<Option<u64>, StoreError> {
        self.run(|s| s.free_space())
    }
    fn checkpoint(&self) -> Result<(), StoreError> {
        self.run(|s| s.checkpoint())
    }
    fn write_counts(&self) -> WriteCounts {
        self.run(|s| s.write_counts())
    }
    fn row_counts(&self) -> Result<RowCounts, StoreError> {
        self.run(|s| s.row_counts())
    }
    fn follow_other_instances(&self, wake: Box<dyn Fn(Handle) + Send + Sync>) {
        self.inner.follow_other_instances(wake)
    }
}

/// The operator's hand on the relay database (a SQLite one: the
/// attacks edit it with SQLite's own statements).
pub struct Hostile {
    db: Option<PathBuf>,
    stale: Stale,
}

impl Hostile {
    /// On the SQLite database `db`, or (`None`) on a relay whose database
    /// this hand cannot edit.
    pub(crate) fn new(db: Option<PathBuf>, stale: Stale) -> Self {
        Hostile { db, stale }
    }

    /// Edits the database of a relay running elsewhere (a child process);
    /// `serve_stale` has no effect there.
    pub fn at(db: &std::path::Path) -> Self {
        Hostile {
            db: Some(db.to_path_buf()),
            stale: Arc::default(),
        }
    }

    /// Adds `member` to a channel's routing record behind the members' backs.
    pub fn add_routing_member(&self, channel: ChannelId, member: &str) {
        self.conn()
            .execute(
                "INSERT INTO channel_members (channel_id, handle) VALUES (?1, ?2)",
                params![&channel.0[..], member],
            )
            .unwrap();
    }

    pub(crate) fn conn(&self) -> Connection {
        let db = self.db.as_ref().expect(
            "the hostile relay edits SQLite databases only: run this test on the SQLite backend",
        );
        let c = Connection::open(db).unwrap();
        c.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
        c
    }

    /// Every envelope waiting for `recipient`, with its cursor.
    pub fn mailbox(&self, recipient: &str) -> Vec<(u64, Envelope)> {
        let c = self.conn();
        let mut stmt = c
            .prepare("SELECT cursor, channel_id, message_id, sender, seq_hint, olm_type, ciphertext FROM envelopes WHERE recipient = ?1 ORDER BY cursor")
            .unwrap();
        stmt.query_map([recipient], |r| {
            Ok((
                r.get::<_, i64>(0)? as u64,
                Envelope {
                    channel_id: ChannelId(r.get::<_, Vec<u8>>(1)?.try_into().unwrap()),
                    message_id: MessageId(r.get::<_, Vec<u8>>(2)?.try_into().unwrap()),
                    sender: Handle::new(r.get::<_, String>(3)?).unwrap(),
                    recipient: Handle::new(recipient).unwrap(),
                    seq_hint: r.get::<_, i64>(4)? as u64,
                    olm_type: OlmType::from_number(r.get::<_, u8>(5)?).unwrap(),
                    ciphertext: r.get(6)?,
                },
            ))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect()
    }

    /// The last envelope `sender` posted to `recipient` that is still waiting.
    pub fn last(&self, sender: &str, recipient: &str) -> Envelope {
        self.mailbox(recipient)
            .into_iter()
            .rev()
            .find(|(_, e)| e.sender.as_str() == sender)
            .map(|(_, e)| e)
            .unwrap_or_else(|| panic!("no envelope from {sender} waiting for {recipient}"))
    }

    /// Removes an envelope from a mailbox before it is fetched (drop, or
    /// the first half of a hold) and returns it.
    pub fn take(&self, message: MessageId, recipient: &str) -> Envelope {
        let env = self
            .mailbox(recipient)
            .into_iter()
            .find(|(_, e)| e.message_id == message)
            .map(|(_, e)| e)
            .unwrap_or_else(|| panic!("no envelope {message} waiting for {recipient}"));
        self.conn()
            .execute(
                "DELETE FROM envelopes WHERE message_id = ?1 AND recipient = ?2",
                params![&message.0[..], recipient],
            )
            .unwrap();
        env
    }

    /// Puts an envelope into its recipient's mailbox as a new delivery, with
    /// no regard for idempotency (release of a held one, replay, injection).
    pub fn deliver(&self, env: &Envelope) -> u64 {
        let c = self.conn();
        let cursor: i64 = c
            .query_row(
                "INSERT INTO envelopes (cursor, recipient, message_id, channel_id, sender, seq_hint, olm_type, ciphertext, received_at_ms)
                 VALUES (max(coalesce((SELECT max(cursor) FROM envelopes), 0), (SELECT issued FROM cursor_floor)) + 1,
                         ?1, ?2, ?3, ?4, ?5, ?6, ?7, 0) RETURNING cursor",
                params![
                    env.recipient.as_str(),
                    &env.message_id.0[..],
                    &env.channel_id.0[..],
                    env.sender.as_str(),
                    env.seq_hint as i64,
                    env.olm_type.number(),
                    &env.ciphertext
                ],
                |r| r.get(0),
            )
            .unwrap();
        cursor as u64
    }

    /// Flips one bit of a waiting envelope's ciphertext.
    pub fn flip(&self, message: MessageId, recipient: &str, byte: usize) {
        let mut env = self.take(message, recipient);
        let i = byte % env.ciphertext.len();
        env.ciphertext[i] ^= 0x01;
        self.deliver(&env);
    }

    /// Serves `env` at an old `cursor` at the head of the next mailbox page.
    pub fn serve_stale(&self, cursor: u64, env: Envelope) {
        self.stale.lock().unwrap().push(StoredEnvelope {
            cursor,
            received_at: Timestamp(0),
            envelope: env,
        });
    }

    /// Replaces a principal's identity keys in the relay's record.
    pub fn set_identity(&self, handle: &str, keys: &IdentityKeys) {
        self.conn()
            .execute(
                "UPDATE principals SET curve25519 = ?1, ed25519 = ?2 WHERE handle = ?3",
                params![&keys.curve25519[..], &keys.ed25519[..], handle],
            )
            .unwrap();
    }

    /// Sets a principal's key version (rolls it back).
    pub fn set_key_version(&self, handle: &str, version: u64) {
        self.conn()
            .execute(
                "UPDATE principals SET key_version = ?1 WHERE handle = ?2",
                params![version as i64, handle],
            )
            .unwrap();
    }

    /// Keeps only the `n` newest unclaimed one-time keys of a principal, as
    /// if the older ones had been claimed.
    pub fn keep_newest_one_time_keys(&self, handle: &str, n: u32) {
        self.conn()
            .execute(
                "DELETE FROM one_time_keys WHERE handle = ?1 AND id NOT IN
                 (SELECT id FROM one_time_keys WHERE handle = ?1 ORDER BY id DESC LIMIT ?2)",
                params![handle, n],
            )
            .unwrap();
    }

    /// Counts the one-time keys the relay holds for `handle`.
    pub fn one_time_key_count(&self, handle: &str) -> u64 {
        self.conn()
            .query_row(
                "SELECT count(*) FROM one_time_keys WHERE handle = ?1",
                [handle],
                |r| r.get::<_, i64>(0),
            )
            .unwrap() as u64
    }

    /// Adds `n` junk one-time keys for `handle`, so the relay reports a
    /// stock the principal never uploaded (a relay lying upwards).
    pub fn add_junk_one_time_keys(&self, handle: &str, n: u32) {
        let c = self.conn();
        for _ in 0..n {
            c.execute(
                "INSERT INTO one_time_keys (handle, key, signature) VALUES (?1, ?2, ?3)",
                params![handle, rand_bytes(32), rand_bytes(64)],
            )
            .unwrap();
        }
    }

    /// Replaces every one-time and fallback key of a principal with `key`
    /// (keeping the owner's signatures, which then no longer match).
    pub fn substitute_one_time_keys(&self, handle: &str, key: [u8; 32]) {
        let c = self.conn();
        // Keys are unique per principal: keep one row, then substitute it.
        c.execute(
            "DELETE FROM one_time_keys WHERE handle = ?1 AND id NOT IN (SELECT min(id) FROM one_time_keys WHERE handle = ?1)",
            [handle],
        )
        .unwrap();
        c.execute(
            "UPDATE one_time_keys SET key = ?1 WHERE handle = ?2",
            params![&key[..], handle],
        )
        .unwrap();
        c.execute(
            "UPDATE fallback_keys SET key = ?1 WHERE handle = ?2",
            params![&key[..], handle],
        )
        .unwrap();
    }

    /// Every blob of `len` bytes in any column of any table, with where it is.
    pub fn blobs_of_len(&self, len: usize) -> Vec<(String, Vec<u8>)> {
        let c = self.conn();
        let tables: Vec<String> = c
            .prepare(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
            )
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let mut out = Vec::new();
        for t in tables {
            let cols: Vec<String> = c
                .prepare(&format!("SELECT name FROM pragma_table_info('{t}')"))
                .unwrap()
                .query_map([], |r| r.get(0))
                .unwrap()
                .map(Result::unwrap)
                .collect();
            for col in cols {
                let sql = format!(
                    "SELECT {col} FROM {t} WHERE typeof({col}) = 'blob' AND length({col}) = {len}"
                );
                let blobs: Vec<Vec<u8>> = c
                    .prepare(&sql)
                    .unwrap()
                    .query_map([], |r| r.get(0))
                    .unwrap()
                    .map(Result::unwrap)
                    .collect();
                out.extend(blobs.into_iter().map(|b| (format!("{t}.{col}"), b)));
            }
        }
        out
    }

    /// Deletes one sealed copy (a partial release, once released).
    pub fn delete_offer(&self, exchange: ExchangeId, submitter: &str, recipient: &str) {
        self.conn()
            .execute(
                "DELETE FROM offers WHERE exchange_id = ?1 AND submitter = ?2 AND recipient = ?3",
                params![&exchange.0[..], submitter, recipient],
            )
            .unwrap();
    }

    /// Changes an exchange's terms digest (the terms its creator announced
    /// end to end stay as they were).
    pub fn swap_exchange_terms(&self, exchange: ExchangeId, terms_digest: [u8; 32]) {
        self.conn()
            .execute(
                "UPDATE exchanges SET terms_digest = ?1 WHERE exchange_id = ?2",
                params![&terms_digest[..], &exchange.0[..]],
            )
            .unwrap();
    }

    /// One sealed copy as stored.
    pub fn offer_copy(&self, exchange: ExchangeId, submitter: &str, recipient: &str) -> Vec<u8> {
        self.conn()
            .query_row(
                "SELECT ciphertext FROM offers WHERE exchange_id = ?1 AND submitter = ?2 AND recipient = ?3",
                params![&exchange.0[..], submitter, recipient],
                |r| r.get(0),
            )
            .unwrap()
    }

    /// Puts back an earlier sealed copy (a replaced offer released instead
    /// of the last one).
    pub fn restore_offer_copy(
        &self,
        exchange: ExchangeId,
        submitter: &str,
        recipient: &str,
        ciphertext: &[u8],
    ) {
        self.conn()
            .execute(
                "UPDATE offers SET ciphertext = ?1 WHERE exchange_id = ?2 AND submitter = ?3 AND recipient = ?4",
                params![ciphertext, &exchange.0[..], submitter, recipient],
            )
            .unwrap();
    }

    /// Replaces a sealed copy in `to` with the one from `from` (a foreign offer).
    pub fn move_offer(&self, from: ExchangeId, to: ExchangeId, submitter: &str, recipient: &str) {
        let ct = self.offer_copy(from, submitter, recipient);
        self.restore_offer_copy(to, submitter, recipient, &ct);
    }

    /// A principal's current key version on the relay.
    pub fn key_version(&self, handle: &str) -> u64 {
        self.conn()
            .query_row(
                "SELECT key_version FROM principals WHERE handle = ?1",
                [handle],
                |r| r.get::<_, i64>(0),
            )
            .optional()
            .unwrap()
            .unwrap_or(0) as u64
    }
}

fn rand_bytes(n: usize) -> Vec<u8> {
    (0..n).map(|_| rand::random::<u8>()).collect()
}
