-- Limits against abuse: rate windows, invitation codes, per-mailbox usage
-- by sender (kept by triggers on every path that stores or deletes an
-- envelope), and whether a fallback key was handed out.

CREATE TABLE rate_windows (
    bucket          TEXT PRIMARY KEY,
    window_start_ms INTEGER NOT NULL,
    window_end_ms   INTEGER NOT NULL,
    count           INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE invites (
    code_hash     BLOB PRIMARY KEY,
    expires_at_ms INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE mailbox_usage (
    recipient TEXT NOT NULL,
    sender    TEXT NOT NULL,
    envelopes INTEGER NOT NULL,
    bytes     INTEGER NOT NULL,
    PRIMARY KEY (recipient, sender)
) WITHOUT ROWID;
CREATE INDEX mailbox_usage_by_sender ON mailbox_usage (sender);

INSERT INTO mailbox_usage (recipient, sender, envelopes, bytes)
    SELECT recipient, sender, count(*), sum(length(ciphertext)) FROM envelopes GROUP BY recipient, sender;

CREATE TRIGGER envelopes_usage_in AFTER INSERT ON envelopes BEGIN
    INSERT INTO mailbox_usage (recipient, sender, envelopes, bytes)
        VALUES (NEW.recipient, NEW.sender, 1, length(NEW.ciphertext))
        ON CONFLICT (recipient, sender) DO UPDATE
        SET envelopes = envelopes + 1, bytes = bytes + excluded.bytes;
END;

CREATE TRIGGER envelopes_usage_out AFTER DELETE ON envelopes BEGIN
    UPDATE mailbox_usage SET envelopes = envelopes - 1, bytes = bytes - length(OLD.ciphertext)
        WHERE recipient = OLD.recipient AND sender = OLD.sender;
    DELETE FROM mailbox_usage
        WHERE recipient = OLD.recipient AND sender = OLD.sender AND envelopes <= 0;
END;

CREATE INDEX envelopes_by_age ON envelopes (received_at_ms);

ALTER TABLE fallback_keys ADD COLUMN claimed INTEGER NOT NULL DEFAULT 0;
