-- Principals and their published keys. Keys are public; nothing here is secret.
CREATE TABLE principals (
    handle        TEXT PRIMARY KEY,
    curve25519    BLOB NOT NULL,
    ed25519       BLOB NOT NULL,
    key_version   INTEGER NOT NULL,
    -- Highest mailbox cursor ever assigned to this principal (acks may not pass it).
    last_cursor   INTEGER NOT NULL DEFAULT 0,
    created_at_ms INTEGER NOT NULL
);

CREATE TABLE one_time_keys (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    handle    TEXT NOT NULL REFERENCES principals(handle),
    key       BLOB NOT NULL,
    signature BLOB NOT NULL,
    UNIQUE (handle, key)
);

CREATE TABLE fallback_keys (
    handle    TEXT PRIMARY KEY REFERENCES principals(handle),
    key       BLOB NOT NULL,
    signature BLOB NOT NULL
);

-- Single-use login challenges; deleted when used or expired.
CREATE TABLE challenges (
    challenge     BLOB PRIMARY KEY,
    handle        TEXT NOT NULL,
    expires_at_ms INTEGER NOT NULL
);

-- Bearer tokens, stored as SHA-256 so a copy of the database logs nobody in.
CREATE TABLE tokens (
    token_hash    BLOB PRIMARY KEY,
    handle        TEXT NOT NULL,
    expires_at_ms INTEGER NOT NULL
);

-- Routing only: clients never trust membership from here.
CREATE TABLE channels (
    channel_id    BLOB PRIMARY KEY,
    created_by    TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL
);

CREATE TABLE channel_members (
    channel_id BLOB NOT NULL REFERENCES channels(channel_id),
    handle     TEXT NOT NULL REFERENCES principals(handle),
    PRIMARY KEY (channel_id, handle)
);

-- Mailboxes. AUTOINCREMENT: a cursor is never reused, even after deletes.
CREATE TABLE envelopes (
    cursor         INTEGER PRIMARY KEY AUTOINCREMENT,
    recipient      TEXT NOT NULL,
    message_id     BLOB NOT NULL,
    channel_id     BLOB NOT NULL,
    sender         TEXT NOT NULL,
    seq_hint       INTEGER NOT NULL,
    olm_type       INTEGER NOT NULL,
    ciphertext     BLOB NOT NULL,
    received_at_ms INTEGER NOT NULL
);
CREATE INDEX envelopes_by_recipient ON envelopes (recipient, cursor);

-- What was posted, kept after an ack so a repeated post answers as the first
-- time: the minimum, a hash of the envelope bytes.
CREATE TABLE posted (
    message_id    BLOB NOT NULL,
    recipient     TEXT NOT NULL,
    envelope_hash BLOB NOT NULL,
    PRIMARY KEY (message_id, recipient)
);
