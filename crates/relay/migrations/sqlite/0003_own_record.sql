-- What the relay records of each principal's own activity, so that a
-- client can notice that its store was restored from an older copy: the
-- highest mailbox position it acknowledged, and the latest message it
-- posted in each channel.
ALTER TABLE principals ADD COLUMN acked_through INTEGER NOT NULL DEFAULT 0;

CREATE TABLE last_posts (
    sender       TEXT NOT NULL,
    channel_id   BLOB NOT NULL,
    message_id   BLOB NOT NULL,
    seq_hint     INTEGER NOT NULL,
    PRIMARY KEY (sender, channel_id)
) WITHOUT ROWID;
