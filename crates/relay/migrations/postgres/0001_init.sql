-- The relay's schema on PostgreSQL: the same records as SQLite's six
-- migrations produce, written for several relay instances on one database.
-- Keys are public; envelopes and offers are ciphertext; tokens and
-- invitation codes are stored as SHA-256.

CREATE TABLE principals (
    handle        TEXT PRIMARY KEY,
    curve25519    BYTEA NOT NULL UNIQUE,
    ed25519       BYTEA NOT NULL UNIQUE,
    key_version   BIGINT NOT NULL,
    -- The highest cursor of this principal's deleted envelopes.
    last_cursor   BIGINT NOT NULL DEFAULT 0,
    acked_through BIGINT NOT NULL DEFAULT 0,
    released      BOOLEAN NOT NULL DEFAULT false,
    created_at_ms BIGINT NOT NULL
);

CREATE TABLE one_time_keys (
    id        BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    handle    TEXT NOT NULL REFERENCES principals(handle),
    key       BYTEA NOT NULL,
    signature BYTEA NOT NULL,
    UNIQUE (handle, key)
);

CREATE TABLE fallback_keys (
    handle    TEXT PRIMARY KEY REFERENCES principals(handle),
    key       BYTEA NOT NULL,
    signature BYTEA NOT NULL,
    claimed   BOOLEAN NOT NULL DEFAULT false
);

CREATE TABLE challenges (
    challenge     BYTEA PRIMARY KEY,
    handle        TEXT NOT NULL,
    expires_at_ms BIGINT NOT NULL
);

CREATE TABLE tokens (
    token_hash    BYTEA PRIMARY KEY,
    handle        TEXT NOT NULL,
    expires_at_ms BIGINT NOT NULL
);

CREATE TABLE invites (
    code_hash     BYTEA PRIMARY KEY,
    expires_at_ms BIGINT NOT NULL
);

CREATE TABLE channels (
    channel_id    BYTEA PRIMARY KEY,
    created_by    TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL
);

CREATE TABLE channel_members (
    channel_id BYTEA NOT NULL REFERENCES channels(channel_id),
    handle     TEXT NOT NULL REFERENCES principals(handle),
    PRIMARY KEY (channel_id, handle)
);

-- Cursors come from one sequence, which never goes back (not even after a
-- crash: PostgreSQL logs a sequence ahead of what it hands out). A post
-- locks its recipients' principals rows before it draws one, so within a
-- mailbox cursor order is commit order: a reader never sees cursor 11
-- and later a cursor 10 committed behind it.
CREATE SEQUENCE envelope_cursors;

CREATE TABLE envelopes (
    cursor         BIGINT PRIMARY KEY,
    recipient      TEXT NOT NULL,
    message_id     BYTEA NOT NULL,
    channel_id     BYTEA NOT NULL,
    sender         TEXT NOT NULL,
    seq_hint       BIGINT NOT NULL,
    olm_type       SMALLINT NOT NULL,
    ciphertext     BYTEA NOT NULL,
    received_at_ms BIGINT NOT NULL
);
CREATE INDEX envelopes_by_recipient ON envelopes (recipient, cursor);

-- What was posted, kept after an ack so a repeated post answers as the
-- first time: a hash of the envelope bytes.
CREATE TABLE posted (
    message_id    BYTEA NOT NULL,
    recipient     TEXT NOT NULL,
    envelope_hash BYTEA NOT NULL,
    PRIMARY KEY (message_id, recipient)
);

CREATE TABLE last_posts (
    sender     TEXT NOT NULL,
    channel_id BYTEA NOT NULL,
    message_id BYTEA NOT NULL,
    seq_hint   BIGINT NOT NULL,
    PRIMARY KEY (sender, channel_id)
);

CREATE TABLE exchanges (
    exchange_id    BYTEA PRIMARY KEY,
    channel_id     BYTEA NOT NULL,
    created_by     TEXT NOT NULL,
    terms_digest   BYTEA NOT NULL,
    deadline_ms    BIGINT NOT NULL,
    created_at_ms  BIGINT NOT NULL,
    state          TEXT NOT NULL CHECK (state IN ('open', 'released', 'destroyed')),
    released_at_ms BIGINT
);

CREATE TABLE exchange_participants (
    exchange_id BYTEA NOT NULL REFERENCES exchanges(exchange_id),
    handle      TEXT NOT NULL,
    PRIMARY KEY (exchange_id, handle)
);

CREATE TABLE offers (
    exchange_id     BYTEA NOT NULL REFERENCES exchanges(exchange_id),
    submitter       TEXT NOT NULL,
    recipient       TEXT NOT NULL,
    olm_type        SMALLINT NOT NULL,
    ciphertext      BYTEA NOT NULL,
    submitted_at_ms BIGINT NOT NULL,
    PRIMARY KEY (exchange_id, submitter, recipient)
);

CREATE TABLE rate_windows (
    bucket          TEXT PRIMARY KEY,
    window_start_ms BIGINT NOT NULL,
    window_end_ms   BIGINT NOT NULL,
    count           BIGINT NOT NULL
);

-- Per-mailbox usage by sender, kept by triggers on every path that stores
-- or deletes an envelope.
CREATE TABLE mailbox_usage (
    recipient TEXT NOT NULL,
    sender    TEXT NOT NULL,
    envelopes BIGINT NOT NULL,
    bytes     BIGINT NOT NULL,
    PRIMARY KEY (recipient, sender)
);
CREATE INDEX mailbox_usage_by_sender ON mailbox_usage (sender);

CREATE FUNCTION envelopes_usage_in() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO mailbox_usage (recipient, sender, envelopes, bytes)
        VALUES (NEW.recipient, NEW.sender, 1, length(NEW.ciphertext))
        ON CONFLICT (recipient, sender) DO UPDATE
        SET envelopes = mailbox_usage.envelopes + 1,
            bytes = mailbox_usage.bytes + excluded.bytes;
    RETURN NULL;
END $$;
CREATE TRIGGER envelopes_usage_in AFTER INSERT ON envelopes
    FOR EACH ROW EXECUTE FUNCTION envelopes_usage_in();

-- A deletion also records the recipient's highest deleted cursor (acks
-- may go up to it; the sequence already keeps cursors unique).
CREATE FUNCTION envelopes_usage_out() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE mailbox_usage SET envelopes = envelopes - 1, bytes = bytes - length(OLD.ciphertext)
        WHERE recipient = OLD.recipient AND sender = OLD.sender;
    DELETE FROM mailbox_usage
        WHERE recipient = OLD.recipient AND sender = OLD.sender AND envelopes <= 0;
    UPDATE principals SET last_cursor = OLD.cursor
        WHERE handle = OLD.recipient AND last_cursor < OLD.cursor;
    RETURN NULL;
END $$;
CREATE TRIGGER envelopes_usage_out AFTER DELETE ON envelopes
    FOR EACH ROW EXECUTE FUNCTION envelopes_usage_out();
