-- What the service sends out: weekly digests to Discord and pull-request comments.

-- One row per (ISO week, destination): claimed before sending, the message id
-- stored after, so restarts, replicas and a schedule that fires twice post once.
CREATE TABLE digest_posts (
    week            TEXT    NOT NULL,           -- 2026-W47
    destination     TEXT    NOT NULL,           -- [[discord.destinations]] name
    state           TEXT    NOT NULL,           -- pending | sent | failed | disabled
    attempts        BIGINT  NOT NULL DEFAULT 0,
    next_attempt_at BIGINT  NOT NULL,           -- epoch ms
    lease_owner     TEXT,
    lease_until     BIGINT,                    -- a claim older than this is taken over
    message_id      TEXT,
    error           TEXT,
    created_at      BIGINT  NOT NULL,
    sent_at         BIGINT,
    PRIMARY KEY (week, destination)
);
CREATE INDEX digest_posts_due ON digest_posts (state, next_attempt_at);

-- A destination whose webhook Discord answered 404/401 for: not tried again
-- until its webhook URL changes (url_hash is a SHA-256 of it, never the URL).
CREATE TABLE discord_destinations (
    name        TEXT    NOT NULL PRIMARY KEY,
    url_hash    TEXT    NOT NULL,
    disabled_at BIGINT  NOT NULL,
    reason      TEXT    NOT NULL
);

-- The one comment tokentally keeps on a pull request (found again by its
-- hidden marker if this row is lost).
CREATE TABLE pr_comments (
    repository_id BIGINT  NOT NULL,
    number        BIGINT  NOT NULL,
    comment_id    BIGINT  NOT NULL,
    body_hash     TEXT    NOT NULL,
    updated_at    BIGINT  NOT NULL,
    PRIMARY KEY (repository_id, number)
);

-- Landed commits whose CI result was asked of GitHub's API (the day before
-- they vest, when no webhook brought one): asked once each.
CREATE TABLE ci_lookups (
    repository_id BIGINT  NOT NULL,
    sha           TEXT    NOT NULL,
    asked_at      BIGINT  NOT NULL,
    found         BIGINT  NOT NULL,             -- results GitHub returned
    PRIMARY KEY (repository_id, sha)
);

-- Dashboard sessions: the id is random and kept only as its SHA-256; a
-- session lasts until expires_at, its logout, or its API token's revocation.
CREATE TABLE sessions (
    id_hash    TEXT    NOT NULL PRIMARY KEY,
    token_id   BIGINT  NOT NULL,           -- api_tokens (id) that logged in
    csrf       TEXT    NOT NULL,           -- the forms' anti-forgery token
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    ended_at   BIGINT
);

-- Vests and clawbacks effective in a week (digest totals, payouts, the dashboard).
CREATE INDEX ledger_kind_at ON ledger_entries (kind, at);
