-- Periods and statements: weeks close into statements that never change, every
-- token that leaves a balance is an entry (payouts too), and the ledger is a
-- hash chain.

-- What an entry corrects (the ISO week it would have been dated in, when that
-- week was closed), the payout factor of a vest (parts per million, fixed when
-- it is booked; a clawback carries its vest's), and a payout's money (minor
-- units of the currency).
ALTER TABLE ledger_entries ADD COLUMN corrects TEXT;
ALTER TABLE ledger_entries ADD COLUMN payout_factor_ppm BIGINT;
ALTER TABLE ledger_entries ADD COLUMN money_minor BIGINT;
CREATE INDEX ledger_at ON ledger_entries (at);

-- The hash chain: each entry's SHA-256 over the previous entry's hash and its
-- own fields. One row per entry, appended with it; the head says where it ends.
CREATE TABLE ledger_chain (
    entry_id BIGINT PRIMARY KEY,
    hash     TEXT   NOT NULL
);
CREATE TABLE ledger_head (
    id            BIGINT PRIMARY KEY,
    last_entry_id BIGINT NOT NULL,
    last_hash     TEXT   NOT NULL
);
INSERT INTO ledger_head (id, last_entry_id, last_hash) VALUES (1, 0, '');

-- Closed weeks, in order; and each person's statement of each closed week.
CREATE TABLE closed_weeks (
    week          TEXT   PRIMARY KEY,            -- 2026-W43
    starts_at     BIGINT NOT NULL,
    ends_at       BIGINT NOT NULL,
    closed_at     BIGINT NOT NULL,
    last_entry_id BIGINT NOT NULL,               -- the last entry the statements cover
    last_hash     TEXT   NOT NULL,
    currency      TEXT   NOT NULL,
    total_minor   BIGINT NOT NULL
);
CREATE TABLE statements (
    week          TEXT   NOT NULL,
    person        TEXT   NOT NULL,
    opening       BIGINT NOT NULL,               -- milli-tokens
    vested        BIGINT NOT NULL,
    clawed_back   BIGINT NOT NULL,
    corrections   BIGINT NOT NULL,
    redeemed      BIGINT NOT NULL,
    paid          BIGINT NOT NULL,
    closing       BIGINT NOT NULL,
    amount_minor  BIGINT NOT NULL,               -- money paid, minor units
    entries       TEXT   NOT NULL,               -- JSON: the entries behind each number
    PRIMARY KEY (week, person)
);

-- A repository's first sync while it runs (closing waits for it).
ALTER TABLE repositories ADD COLUMN first_sync_since BIGINT;

CREATE FUNCTION periods_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
END
$$;
CREATE TRIGGER statements_no_change BEFORE UPDATE OR DELETE ON statements
    FOR EACH ROW EXECUTE FUNCTION periods_append_only();
CREATE TRIGGER statements_no_truncate BEFORE TRUNCATE ON statements
    FOR EACH STATEMENT EXECUTE FUNCTION periods_append_only();
CREATE TRIGGER closed_weeks_no_change BEFORE UPDATE OR DELETE ON closed_weeks
    FOR EACH ROW EXECUTE FUNCTION periods_append_only();
CREATE TRIGGER closed_weeks_no_truncate BEFORE TRUNCATE ON closed_weeks
    FOR EACH STATEMENT EXECUTE FUNCTION periods_append_only();
CREATE TRIGGER ledger_chain_no_change BEFORE UPDATE OR DELETE ON ledger_chain
    FOR EACH ROW EXECUTE FUNCTION periods_append_only();
CREATE TRIGGER ledger_chain_no_truncate BEFORE TRUNCATE ON ledger_chain
    FOR EACH STATEMENT EXECUTE FUNCTION periods_append_only();

-- Clawbacks of tokens that had not vested are cancellations of the accrual
-- (no money moves): the kind says so from now on.
ALTER TABLE ledger_entries DISABLE TRIGGER ledger_entries_no_change;
UPDATE ledger_entries SET kind = 'cancel'
WHERE kind = 'clawback'
  AND COALESCE((SELECT SUM(v.amount) FROM ledger_entries v
                WHERE v.commit_id = ledger_entries.commit_id AND v.kind = 'vest'), 0) = 0;
ALTER TABLE ledger_entries ENABLE TRIGGER ledger_entries_no_change;

-- CI attempts were numbered in the order webhooks arrived; a check suite, a
-- check run or a status has no number of its own: its payload time orders it.
UPDATE signals SET attempt = NULL
WHERE source IN ('github:check_suite', 'github:check_run', 'github:status');
