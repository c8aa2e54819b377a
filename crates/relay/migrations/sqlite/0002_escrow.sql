-- Escrowed simultaneous exchanges: sealed offers held until every
-- participant has submitted, released together, destroyed at the deadline.
CREATE TABLE exchanges (
    exchange_id    BLOB PRIMARY KEY,
    channel_id     BLOB NOT NULL,
    created_by     TEXT NOT NULL,
    terms_digest   BLOB NOT NULL,
    deadline_ms    INTEGER NOT NULL,
    created_at_ms  INTEGER NOT NULL,
    -- 'open', 'released' or 'destroyed'
    state          TEXT NOT NULL,
    released_at_ms INTEGER
);

CREATE TABLE exchange_participants (
    exchange_id BLOB NOT NULL REFERENCES exchanges(exchange_id),
    handle      TEXT NOT NULL,
    PRIMARY KEY (exchange_id, handle)
);

-- One sealed copy per submitter and recipient (the other participants).
CREATE TABLE offers (
    exchange_id     BLOB NOT NULL REFERENCES exchanges(exchange_id),
    submitter       TEXT NOT NULL,
    recipient       TEXT NOT NULL,
    olm_type        INTEGER NOT NULL,
    ciphertext      BLOB NOT NULL,
    submitted_at_ms INTEGER NOT NULL,
    PRIMARY KEY (exchange_id, submitter, recipient)
);
