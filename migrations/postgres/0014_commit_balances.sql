-- Per commit and landing time, the sums of its ledger entries by kind: what
-- the leaderboard, the digest and the dashboard read for a week, kept in the
-- transaction that appends the entries, so a week's read is one row per
-- commit rather than a sum over the ledger. `latest` is the id of its last
-- earning entry (accrual or adjustment), whose explanation holds the score;
-- `flags` what that score said: 1 = CI red, 2 = a duplicate, 4 = noise.
CREATE TABLE commit_balances (
    commit_id     BIGINT NOT NULL,
    landed_at     BIGINT NOT NULL,
    person        TEXT    NOT NULL,
    repository_id BIGINT,
    sha           TEXT,
    earned        BIGINT NOT NULL,
    vested        BIGINT NOT NULL,
    clawed        BIGINT NOT NULL,
    cancelled     BIGINT NOT NULL,
    latest        BIGINT,
    flags         BIGINT,
    PRIMARY KEY (commit_id, landed_at)
);
CREATE INDEX commit_balances_landed ON commit_balances (landed_at);

-- Entries up to this id are in commit_balances. 0: the store adds the
-- ledger's existing entries right after migrating (the same statement that
-- adds each append's), so an upgraded ledger is summed once, by one query.
ALTER TABLE ledger_head ADD COLUMN balanced_entry_id BIGINT NOT NULL DEFAULT 0;
