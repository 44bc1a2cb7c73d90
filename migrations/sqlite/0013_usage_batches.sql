-- OTLP batches as received (re-encoded protobuf): acknowledged once stored
-- here, counted into usage right after, exactly once (counted_at is set in
-- the transaction that counts them).
CREATE TABLE usage_batches (
    id          INTEGER PRIMARY KEY,
    body        BLOB NOT NULL,
    received_at INTEGER NOT NULL,
    counted_at  INTEGER
);
CREATE INDEX usage_batches_open ON usage_batches (counted_at, id);
