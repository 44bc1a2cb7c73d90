-- Scoring and the token ledger.

-- The append-only token ledger: every amount a person earned, vested, lost or
-- redeemed, with the rules and inputs that produced it. Never updated or
-- deleted (the triggers below refuse it); corrections are new entries.
-- repository_id and commit_id are not foreign keys: the ledger writes them from
-- rows it has just read, nothing deletes those, and checking each of hundreds of
-- thousands of appended rows doubled the time of a full replay on PostgreSQL.
CREATE TABLE ledger_entries (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    person          TEXT    NOT NULL,
    kind            TEXT    NOT NULL,           -- accrual | adjustment | vest | clawback | redemption
    repository_id   BIGINT,                     -- repositories (id)
    commit_id       BIGINT,                     -- commits (id)
    sha             TEXT,
    amount          BIGINT  NOT NULL,           -- milli-tokens, signed
    rules_version   TEXT    NOT NULL,
    at              BIGINT  NOT NULL,           -- effective time (epoch ms)
    landed_at       BIGINT,                     -- when its commit landed: the leaderboard's week
    idempotency_key TEXT    NOT NULL UNIQUE,
    explanation     TEXT    NOT NULL,           -- JSON: inputs, factors, formula
    created_at      BIGINT  NOT NULL
);
CREATE INDEX ledger_person_at ON ledger_entries (person, at);
CREATE INDEX ledger_commit ON ledger_entries (commit_id);
CREATE INDEX ledger_landed ON ledger_entries (landed_at);

CREATE FUNCTION ledger_entries_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger entries are append-only';
END
$$;
CREATE TRIGGER ledger_entries_no_change BEFORE UPDATE OR DELETE ON ledger_entries
    FOR EACH ROW EXECUTE FUNCTION ledger_entries_append_only();
CREATE TRIGGER ledger_entries_no_truncate BEFORE TRUNCATE ON ledger_entries
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_entries_append_only();

-- Each rule set entries were computed under, by version, so a commit keeps the
-- rules it accrued under until `replay --apply` moves it to new ones.
CREATE TABLE rule_sets (
    version    TEXT    PRIMARY KEY,
    rules      TEXT    NOT NULL,                -- canonical JSON
    created_at BIGINT  NOT NULL
);

-- Pull requests as their webhooks describe them: a squash or merge commit with
-- no CI of its own takes its head's CI at merge time.
CREATE TABLE pull_requests (
    repository_id BIGINT  NOT NULL REFERENCES repositories (id),
    number        BIGINT  NOT NULL,
    head_sha      TEXT    NOT NULL,
    merge_sha     TEXT,
    merged_at     BIGINT,
    updated_at    BIGINT  NOT NULL,
    PRIMARY KEY (repository_id, number)
);

-- Scheduled jobs: one row per job and scheduled time, so among replicas sharing
-- a database only the one that inserts it runs it.
CREATE TABLE job_runs (
    job          TEXT    NOT NULL,
    scheduled_at BIGINT  NOT NULL,
    owner        TEXT    NOT NULL,
    started_at   BIGINT  NOT NULL,
    finished_at  BIGINT,
    outcome      TEXT,
    PRIMARY KEY (job, scheduled_at)
);

-- What the weekly jobs computed, as first computed: calibration per ISO week,
-- hygiene per person and ISO week.
CREATE TABLE calibrations (
    week          TEXT    NOT NULL,             -- 2026-W41
    rules_version TEXT    NOT NULL,
    factors       TEXT    NOT NULL,             -- JSON {kind: factor}
    computed_at   BIGINT  NOT NULL,
    PRIMARY KEY (week, rules_version)
);
CREATE TABLE hygiene_scores (
    person        TEXT    NOT NULL,
    week          TEXT    NOT NULL,
    rules_version TEXT    NOT NULL,
    score         BIGINT  NOT NULL,
    events        TEXT    NOT NULL,             -- JSON counts
    computed_at   BIGINT  NOT NULL,
    PRIMARY KEY (person, week, rules_version)
);

-- API token roles: report (write signals), read (read API), admin (everything).
ALTER TABLE api_tokens ADD COLUMN role TEXT NOT NULL DEFAULT 'report';

-- Commit times for the baseline: history found by a repository's first sync
-- landed at its committer date.
ALTER TABLE commits ADD COLUMN committed_at BIGINT;
CREATE INDEX commits_landed_at ON commits (landed_at);

-- Hygiene reads revert and fix events by the week they happened in, and
-- whether a commit was reverted.
CREATE INDEX signals_name_time ON signals (name, occurred_at);
CREATE INDEX signals_commit_name ON signals (repository_id, sha, name);
