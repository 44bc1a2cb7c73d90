-- Outcome signals for commits (CI, deploys, incidents, reverts, custom), and the
-- API tokens CI pipelines use to report them.
CREATE TABLE signals (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    repository_id   BIGINT NOT NULL REFERENCES repositories (id),
    sha             TEXT    NOT NULL,           -- 7 to 40 hex digits as reported, lower case
    name            TEXT    NOT NULL,           -- ci | deploy | incident | reverted | fixed_later | custom
    status          TEXT    NOT NULL,           -- pass | fail
    value           DOUBLE PRECISION,
    url             TEXT,
    source          TEXT    NOT NULL,           -- api:<token name> | github:<event>
    context         TEXT,                       -- check or status name, environment
    attempt         BIGINT,                    -- CI run attempt, 1 = first run
    idempotency_key TEXT,
    body_hash       TEXT,                       -- to tell a replay from a conflicting reuse of a key
    occurred_at     BIGINT NOT NULL,
    received_at     BIGINT NOT NULL,
    UNIQUE (repository_id, idempotency_key)
);
CREATE INDEX signals_commit ON signals (repository_id, sha);

CREATE TABLE api_tokens (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name         TEXT    NOT NULL UNIQUE,
    token_hash   TEXT    NOT NULL UNIQUE,       -- SHA-256 of the token; the token itself is never stored
    repositories TEXT    NOT NULL,              -- JSON array of owner/name, or ["*"] for all
    created_at   BIGINT NOT NULL,
    revoked_at   BIGINT,
    last_used_at BIGINT
);
