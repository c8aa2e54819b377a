-- A leaner write per post. Before, each envelope also wrote the
-- recipient's principals row (its highest cursor), sqlite_sequence (for
-- AUTOINCREMENT), an index by age and a rowid table beside the posted
-- hashes' primary key. Now the highest cursors are recorded where a
-- cursor can be lost, at a deletion, by a trigger on every path that
-- deletes; a post reads them, and writes only its envelope, the
-- recipient index, the posted hash, the usage count and the last post.

-- The highest cursor of any deleted envelope: new cursors start above it,
-- so a cursor is never issued twice even when every envelope is gone.
CREATE TABLE cursor_floor (
    id     INTEGER PRIMARY KEY CHECK (id = 1),
    issued INTEGER NOT NULL
);
INSERT INTO cursor_floor (id, issued) VALUES (1, max(
    (SELECT coalesce(max(seq), 0) FROM sqlite_sequence WHERE name = 'envelopes'),
    (SELECT coalesce(max(last_cursor), 0) FROM principals),
    (SELECT coalesce(max(cursor), 0) FROM envelopes)
));

-- Cursors are assigned by the relay (above the floor), not by AUTOINCREMENT.
CREATE TABLE envelopes_lean (
    cursor         INTEGER PRIMARY KEY,
    recipient      TEXT NOT NULL,
    message_id     BLOB NOT NULL,
    channel_id     BLOB NOT NULL,
    sender         TEXT NOT NULL,
    seq_hint       INTEGER NOT NULL,
    olm_type       INTEGER NOT NULL,
    ciphertext     BLOB NOT NULL,
    received_at_ms INTEGER NOT NULL
);
INSERT INTO envelopes_lean (cursor, recipient, message_id, channel_id, sender, seq_hint, olm_type, ciphertext, received_at_ms)
    SELECT cursor, recipient, message_id, channel_id, sender, seq_hint, olm_type, ciphertext, received_at_ms FROM envelopes;
-- Drops the old table's indexes and triggers with it.
DROP TABLE envelopes;
ALTER TABLE envelopes_lean RENAME TO envelopes;
DELETE FROM sqlite_sequence WHERE name = 'envelopes';
CREATE INDEX envelopes_by_recipient ON envelopes (recipient, cursor);

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

-- principals.last_cursor now holds the recipient's highest deleted cursor:
-- its highest cursor ever is the larger of it and its mailbox's highest.
CREATE TRIGGER envelopes_floor AFTER DELETE ON envelopes BEGIN
    UPDATE cursor_floor SET issued = OLD.cursor WHERE id = 1 AND issued < OLD.cursor;
    UPDATE principals SET last_cursor = OLD.cursor
        WHERE handle = OLD.recipient AND last_cursor < OLD.cursor;
END;

-- One b-tree for the posted hashes instead of a table and its key's index.
CREATE TABLE posted_lean (
    message_id    BLOB NOT NULL,
    recipient     TEXT NOT NULL,
    envelope_hash BLOB NOT NULL,
    PRIMARY KEY (message_id, recipient)
) WITHOUT ROWID;
INSERT INTO posted_lean (message_id, recipient, envelope_hash)
    SELECT message_id, recipient, envelope_hash FROM posted;
DROP TABLE posted;
ALTER TABLE posted_lean RENAME TO posted;
