-- The client's local store. Everything secret or personal is sealed
-- (XChaCha20-Poly1305 under the store key); ids, handles and counters stay
-- in the clear so rows can be found. The relay knows all of those already.
CREATE TABLE meta (
    k TEXT PRIMARY KEY,
    v BLOB NOT NULL
);

-- The Olm account (identity keys, one-time keys): sealed pickle.
CREATE TABLE account (
    id     INTEGER PRIMARY KEY CHECK (id = 1),
    sealed BLOB NOT NULL
);

-- Olm sessions, several per peer possible; sealed pickles.
CREATE TABLE sessions (
    session_id TEXT PRIMARY KEY,
    peer       TEXT NOT NULL,
    sealed     BLOB NOT NULL,
    used_at    INTEGER NOT NULL
);

-- Pinned identity keys and how they were learnt: sealed.
CREATE TABLE peers (
    handle TEXT PRIMARY KEY,
    sealed BLOB NOT NULL
);

-- Every payload this member sent or received, sealed. `applied` orders the
-- payloads as they were folded into the channel state (NULL: held back,
-- waiting for an earlier message or an epoch to open).
CREATE TABLE messages (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    channel_id BLOB NOT NULL,
    message_id BLOB NOT NULL,
    sender     TEXT NOT NULL,
    applied    INTEGER UNIQUE,
    sealed     BLOB NOT NULL,
    UNIQUE (message_id, sender)
);

-- Message ids already processed, with a hash of the envelope: an identical
-- redelivery is dropped before decrypting.
CREATE TABLE processed (
    message_id    BLOB PRIMARY KEY,
    envelope_hash BLOB NOT NULL
);

-- Posts committed before they are sent; after a crash the same bytes go again.
CREATE TABLE outbox (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    channel_id BLOB NOT NULL,
    sealed     BLOB NOT NULL
);

CREATE TABLE alerts (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    dismissed INTEGER NOT NULL DEFAULT 0,
    sealed    BLOB NOT NULL
);

-- Digests of every ciphertext processed: the same ciphertext under another
-- message id or channel is a replay (Olm would refuse it as a bad MAC).
CREATE TABLE ciphertexts (
    digest BLOB PRIMARY KEY
);

-- Ciphertexts that failed to decrypt and are not yet classified: a later
-- genuine message of the sender decides between `modified` and `forged`.
CREATE TABLE failures (
    message_id BLOB PRIMARY KEY,
    channel_id BLOB NOT NULL,
    sender     TEXT NOT NULL,
    seq_hint   INTEGER NOT NULL,
    learned_at INTEGER NOT NULL,
    epoch      INTEGER NOT NULL DEFAULT 0
);

-- The highest key version the relay ever showed for each principal: an
-- older one later is a rollback.
CREATE TABLE key_versions (
    handle  TEXT PRIMARY KEY,
    version INTEGER NOT NULL
);

-- Escrowed exchanges this member takes part in: what it saw and opened.
CREATE TABLE exchanges (
    exchange_id BLOB PRIMARY KEY,
    sealed      BLOB NOT NULL
);

-- First messages under a changed key, kept unread until the user decides.
CREATE TABLE deferred (
    message_id BLOB PRIMARY KEY,
    sealed     BLOB NOT NULL
);
