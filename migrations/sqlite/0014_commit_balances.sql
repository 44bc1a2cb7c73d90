-- Per commit and landing time, the sums of its ledger entries by kind: what
-- the leaderboard, the digest and the dashboard read for a week, kept in the
-- transaction that appends the entries, so a week's read is one row per
-- commit rather than a sum over the ledger. `latest` is the id of its last
-- earning entry (accrual or adjustment), whose explanation holds the score;
-- `flags` what that score said: 1 = CI red, 2 = a duplicate, 4 = noise.
CREATE TABLE commit_balances (
    commit_id     INTEGER NOT NULL,
    landed_at     INTEGER NOT NULL,
    person        TEXT    NOT NULL,
    repository_id INTEGER,
    sha           TEXT,
    earned        INTEGER NOT NULL,
    vested        INTEGER NOT NULL,
    clawed        INTEGER NOT NULL,
    cancelled     INTEGER NOT NULL,
    latest        INTEGER,
    flags         INTEGER,
    PRIMARY KEY (commit_id, landed_at)
);
CREATE INDEX commit_balances_landed ON commit_balances (landed_at);

-- Entries up to this id are in commit_balances.
ALTER TABLE ledger_head ADD COLUMN balanced_entry_id INTEGER NOT NULL DEFAULT 0;

INSERT INTO commit_balances (commit_id, landed_at, person, repository_id, sha,
                             earned, vested, clawed, cancelled, latest, flags)
SELECT g.*,
       (SELECT CASE WHEN l.explanation LIKE '%"ci":"red"%' THEN 1 ELSE 0 END
             + CASE WHEN l.explanation LIKE '%"duplicate_of":%' THEN 2 ELSE 0 END
             + CASE WHEN l.explanation LIKE '%"noise":true%' THEN 4 ELSE 0 END
        FROM ledger_entries l WHERE l.id = g.latest)
FROM (SELECT commit_id, landed_at, MAX(person), MAX(repository_id), MAX(sha),
             CAST(SUM(CASE WHEN kind IN ('accrual', 'adjustment') THEN amount ELSE 0 END) AS BIGINT),
             CAST(SUM(CASE WHEN kind = 'vest' THEN amount ELSE 0 END) AS BIGINT),
             CAST(SUM(CASE WHEN kind = 'clawback' THEN amount ELSE 0 END) AS BIGINT),
             CAST(SUM(CASE WHEN kind = 'cancel' THEN amount ELSE 0 END) AS BIGINT),
             MAX(CASE WHEN kind IN ('accrual', 'adjustment') THEN id END) AS latest
      FROM ledger_entries
      WHERE commit_id IS NOT NULL AND landed_at IS NOT NULL
      GROUP BY commit_id, landed_at) g;

UPDATE ledger_head SET balanced_entry_id = (SELECT COALESCE(MAX(id), 0) FROM ledger_entries);
