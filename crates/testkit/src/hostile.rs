//! A relay that attacks its users (ATTACKS.md), for tests only: it edits the
//! real relay's database behind the API (as an operator could) and, for
//! rollbacks, serves stale mailbox entries through a storage wrapper.

use std::sync::{Arc, Mutex};

use backchannel_protocol::{
    ChannelId, Digest, Envelope, ExchangeId, Handle, IdentityKeys, MessageId, OlmType, SignedKey,
    Timestamp,
};
use backchannel_relay::store::{
    ChannelRecord, Claimed, ExchangeRecord, KeyCounts, KeyStock, OfferCopy, Posting,
    PrincipalRecord, Quota, Rate, RateDecision, RelayStore, RowCounts, StoreError, StoredEnvelope,
    Usage, WriteCounts,
};
pub use sql::{Db, V};

mod sql;

/// What the relay does behind the members' backs, shared by the store
/// wrapper and the test's handle.
#[derive(Default)]
pub struct Tricks {
    /// Entries served before the real mailbox.
    stale: Mutex<Vec<StoredEnvelope>>,
    /// Recipients whose next envelope is dropped on post.
    drops: Mutex<Vec<Handle>>,
}

type Stale = Arc<Tricks>;

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

impl Posting for TamperStore {
    fn token(&self, t: &Digest) -> Result<Option<(Handle, Timestamp)>, StoreError> {
        self.run(|s| s.token(t))
    }
    fn channel(&self, id: &ChannelId) -> Result<Option<ChannelRecord>, StoreError> {
        self.run(|s| s.channel(id))
    }
    fn post_counted(
        &self,
        e: &[Envelope],
        now: Timestamp,
        quota: &Quota,
        counts: &[(String, Rate)],
    ) -> Result<Vec<StoredEnvelope>, StoreError> {
        // A dropped envelope is answered as stored: the sender cannot tell.
        let kept: Vec<Envelope> = {
            let mut drops = self.stale.drops.lock().unwrap_or_else(|p| p.into_inner());
            e.iter()
                .filter(|env| match drops.iter().position(|d| *d == env.recipient) {
                    Some(i) => {
                        drops.remove(i);
                        false
                    }
                    None => true,
                })
                .cloned()
                .collect()
        };
        if kept.is_empty() {
            return Ok(Vec::new());
        }
        self.run(|s| s.post_counted(&kept, now, quota, counts))
    }
    fn hit(&self, bucket: &str, rate: Rate, now: Timestamp) -> Result<RateDecision, StoreError> {
        self.run(|s| s.hit(bucket, rate, now))
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
    fn mailbox(
        &self,
        r: &Handle,
        after: u64,
        limit: usize,
    ) -> Result<Vec<StoredEnvelope>, StoreError> {
        let mut stale = self.stale.stale.lock().unwrap_or_else(|p| p.into_inner());
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

/// The operator's hand on the relay database, SQLite or PostgreSQL.
#[derive(Clone)]
pub struct Hostile {
    db: Db,
    stale: Stale,
}

impl Hostile {
    pub(crate) fn new(db: Db, stale: Stale) -> Self {
        Hostile { db, stale }
    }

    /// Edits the SQLite database of a relay running elsewhere (a child
    /// process); `serve_stale` has no effect there.
    pub fn at(db: &std::path::Path) -> Self {
        Hostile {
            db: Db::Sqlite(db.to_path_buf()),
            stale: Arc::default(),
        }
    }

    /// Adds `member` to a channel's routing record behind the members' backs.
    pub fn add_routing_member(&self, channel: ChannelId, member: &str) {
        self.db.exec(
            "INSERT INTO channel_members (channel_id, handle) VALUES (?1, ?2)",
            &[channel.0[..].into(), member.into()],
        );
    }

    /// How many envelopes were ever posted to `recipient` (acked or not).
    pub fn posted_to(&self, recipient: &str) -> u64 {
        self.db.rows(
            "SELECT count(*) FROM posted WHERE recipient = ?1",
            &[recipient.into()],
        )[0][0]
            .int() as u64
    }

    /// Every envelope waiting for `recipient`, with its cursor.
    pub fn mailbox(&self, recipient: &str) -> Vec<(u64, Envelope)> {
        self.db
            .rows(
                "SELECT cursor, channel_id, message_id, sender, seq_hint, olm_type, ciphertext FROM envelopes WHERE recipient = ?1 ORDER BY cursor",
                &[recipient.into()],
            )
            .into_iter()
            .map(|r| {
                (
                    r[0].int() as u64,
                    Envelope {
                        channel_id: ChannelId(r[1].blob().try_into().unwrap()),
                        message_id: MessageId(r[2].blob().try_into().unwrap()),
                        sender: Handle::new(r[3].text()).unwrap(),
                        recipient: Handle::new(recipient).unwrap(),
                        seq_hint: r[4].int() as u64,
                        olm_type: OlmType::from_number(r[5].int() as u8).unwrap(),
                        ciphertext: r[6].blob(),
                    },
                )
            })
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
        self.db.exec(
            "DELETE FROM envelopes WHERE message_id = ?1 AND recipient = ?2",
            &[message.0[..].into(), recipient.into()],
        );
        env
    }

    /// Puts an envelope into its recipient's mailbox as a new delivery, with
    /// no regard for idempotency (release of a held one, replay, injection).
    pub fn deliver(&self, env: &Envelope) -> u64 {
        let next = if self.db.is_postgres() {
            "nextval('envelope_cursors')"
        } else {
            "max(coalesce((SELECT max(cursor) FROM envelopes), 0), (SELECT issued FROM cursor_floor)) + 1"
        };
        self.db.rows(
            &format!(
                "INSERT INTO envelopes (cursor, recipient, message_id, channel_id, sender, seq_hint, olm_type, ciphertext, received_at_ms)
                 VALUES ({next}, ?1, ?2, ?3, ?4, ?5, ?6, ?7, 0) RETURNING cursor"
            ),
            &[
                env.recipient.as_str().into(),
                env.message_id.0[..].into(),
                env.channel_id.0[..].into(),
                env.sender.as_str().into(),
                env.seq_hint.into(),
                u32::from(env.olm_type.number()).into(),
                env.ciphertext.clone().into(),
            ],
        )[0][0]
            .int() as u64
    }

    /// Flips one bit of a waiting envelope's ciphertext.
    pub fn flip(&self, message: MessageId, recipient: &str, byte: usize) {
        let mut env = self.take(message, recipient);
        let i = byte % env.ciphertext.len();
        env.ciphertext[i] ^= 0x01;
        self.deliver(&env);
    }

    /// Drops the next envelope posted to `recipient` (in this process's
    /// relay), answering the sender as if it were stored.
    pub fn drop_next(&self, recipient: &str) {
        let h = Handle::new(recipient).expect("a valid handle");
        self.stale.drops.lock().unwrap().push(h);
    }

    /// Serves `env` at an old `cursor` at the head of the next mailbox page.
    pub fn serve_stale(&self, cursor: u64, env: Envelope) {
        self.stale.stale.lock().unwrap().push(StoredEnvelope {
            cursor,
            received_at: Timestamp(0),
            envelope: env,
        });
    }

    /// Replaces a principal's identity keys in the relay's record (on
    /// PostgreSQL, dropping the constraints that keep keys unique first,
    /// as an operator serving another's keys would).
    pub fn set_identity(&self, handle: &str, keys: &IdentityKeys) {
        if self.db.is_postgres() {
            self.db.exec(
                "ALTER TABLE principals DROP CONSTRAINT IF EXISTS principals_curve25519_key, DROP CONSTRAINT IF EXISTS principals_ed25519_key",
                &[],
            );
        }
        self.db.exec(
            "UPDATE principals SET curve25519 = ?1, ed25519 = ?2 WHERE handle = ?3",
            &[
                keys.curve25519[..].into(),
                keys.ed25519[..].into(),
                handle.into(),
            ],
        );
    }

    /// Sets a principal's key version (rolls it back).
    pub fn set_key_version(&self, handle: &str, version: u64) {
        self.db.exec(
            "UPDATE principals SET key_version = ?1 WHERE handle = ?2",
            &[version.into(), handle.into()],
        );
    }

    /// Keeps only the `n` newest unclaimed one-time keys of a principal, as
    /// if the older ones had been claimed.
    pub fn keep_newest_one_time_keys(&self, handle: &str, n: u32) {
        self.db.exec(
            "DELETE FROM one_time_keys WHERE handle = ?1 AND id NOT IN
             (SELECT id FROM one_time_keys WHERE handle = ?1 ORDER BY id DESC LIMIT ?2)",
            &[handle.into(), n.into()],
        );
    }

    /// Counts the one-time keys the relay holds for `handle`.
    pub fn one_time_key_count(&self, handle: &str) -> u64 {
        self.db.rows(
            "SELECT count(*) FROM one_time_keys WHERE handle = ?1",
            &[handle.into()],
        )[0][0]
            .int() as u64
    }

    /// Adds `n` junk one-time keys for `handle`, so the relay reports a
    /// stock the principal never uploaded (a relay lying upwards).
    pub fn add_junk_one_time_keys(&self, handle: &str, n: u32) {
        for _ in 0..n {
            self.db.exec(
                "INSERT INTO one_time_keys (handle, key, signature) VALUES (?1, ?2, ?3)",
                &[handle.into(), rand_bytes(32).into(), rand_bytes(64).into()],
            );
        }
    }

    /// Replaces every one-time and fallback key of a principal with `key`
    /// (keeping the owner's signatures, which then no longer match).
    pub fn substitute_one_time_keys(&self, handle: &str, key: [u8; 32]) {
        // Keys are unique per principal: keep one row, then substitute it.
        self.db.exec(
            "DELETE FROM one_time_keys WHERE handle = ?1 AND id NOT IN (SELECT min(id) FROM one_time_keys WHERE handle = ?1)",
            &[handle.into()],
        );
        for table in ["one_time_keys", "fallback_keys"] {
            self.db.exec(
                &format!("UPDATE {table} SET key = ?1 WHERE handle = ?2"),
                &[key[..].into(), handle.into()],
            );
        }
    }

    /// Every blob of `len` bytes in any column of any table, with where it is.
    pub fn blobs_of_len(&self, len: usize) -> Vec<(String, Vec<u8>)> {
        let columns: Vec<(String, String)> = if self.db.is_postgres() {
            self.db
                .rows(
                    "SELECT table_name::text, column_name::text FROM information_schema.columns
                     WHERE table_schema = 'public' AND data_type = 'bytea'",
                    &[],
                )
                .into_iter()
                .map(|r| (r[0].text(), r[1].text()))
                .collect()
        } else {
            self.db
                .rows(
                    "SELECT m.name, p.name FROM sqlite_master m, pragma_table_info(m.name) p
                     WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%'",
                    &[],
                )
                .into_iter()
                .map(|r| (r[0].text(), r[1].text()))
                .collect()
        };
        let is_blob = if self.db.is_postgres() {
            "true"
        } else {
            "typeof({col}) = 'blob'"
        };
        let mut out = Vec::new();
        for (t, col) in columns {
            let sql = format!(
                "SELECT {col} FROM {t} WHERE {} AND length({col}) = {len}",
                is_blob.replace("{col}", &col)
            );
            out.extend(
                self.db
                    .rows(&sql, &[])
                    .into_iter()
                    .map(|r| (format!("{t}.{col}"), r[0].blob())),
            );
        }
        out
    }

    /// Deletes one sealed copy (a partial release, once released).
    pub fn delete_offer(&self, exchange: ExchangeId, submitter: &str, recipient: &str) {
        self.db.exec(
            "DELETE FROM offers WHERE exchange_id = ?1 AND submitter = ?2 AND recipient = ?3",
            &[exchange.0[..].into(), submitter.into(), recipient.into()],
        );
    }

    /// Changes an exchange's terms digest (the terms its creator announced
    /// end to end stay as they were).
    pub fn swap_exchange_terms(&self, exchange: ExchangeId, terms_digest: [u8; 32]) {
        self.db.exec(
            "UPDATE exchanges SET terms_digest = ?1 WHERE exchange_id = ?2",
            &[terms_digest[..].into(), exchange.0[..].into()],
        );
    }

    /// One sealed copy as stored.
    pub fn offer_copy(&self, exchange: ExchangeId, submitter: &str, recipient: &str) -> Vec<u8> {
        self.db.rows(
            "SELECT ciphertext FROM offers WHERE exchange_id = ?1 AND submitter = ?2 AND recipient = ?3",
            &[exchange.0[..].into(), submitter.into(), recipient.into()],
        )[0][0]
            .blob()
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
        self.db.exec(
            "UPDATE offers SET ciphertext = ?1 WHERE exchange_id = ?2 AND submitter = ?3 AND recipient = ?4",
            &[ciphertext.into(), exchange.0[..].into(), submitter.into(), recipient.into()],
        );
    }

    /// Replaces a sealed copy in `to` with the one from `from` (a foreign offer).
    pub fn move_offer(&self, from: ExchangeId, to: ExchangeId, submitter: &str, recipient: &str) {
        let ct = self.offer_copy(from, submitter, recipient);
        self.restore_offer_copy(to, submitter, recipient, &ct);
    }

    /// A principal's current key version on the relay.
    pub fn key_version(&self, handle: &str) -> u64 {
        self.db
            .rows(
                "SELECT key_version FROM principals WHERE handle = ?1",
                &[handle.into()],
            )
            .first()
            .map_or(0, |r| r[0].int() as u64)
    }
}

fn rand_bytes(n: usize) -> Vec<u8> {
    (0..n).map(|_| rand::random::<u8>()).collect()
}
