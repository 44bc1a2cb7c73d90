-- Service core: the webhook inbox, repositories, people and their identities.
-- Times are epoch milliseconds (INTEGER).

CREATE TABLE repositories (
    id              INTEGER PRIMARY KEY,
    full_name       TEXT    NOT NULL UNIQUE,   -- owner/name as GitHub spells it
    github_id       INTEGER,
    default_branch  TEXT,
    clone_url       TEXT,
    installation_id INTEGER,                   -- GitHub App installation, when there is one
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);

-- Every accepted webhook delivery, stored before it is acknowledged.
CREATE TABLE deliveries (
    id              INTEGER PRIMARY KEY,
    delivery_id     TEXT    NOT NULL UNIQUE,   -- X-GitHub-Delivery
    event           TEXT    NOT NULL,          -- X-GitHub-Event
    action          TEXT,
    hook_id         TEXT,                      -- X-GitHub-Hook-ID
    received_at     INTEGER NOT NULL,
    state           TEXT    NOT NULL DEFAULT 'pending', -- pending|processing|processed|ignored|failed
    attempts        INTEGER NOT NULL DEFAULT 0,
    -- When the delivery may next be claimed: its (retry) time while pending, the
    -- end of the worker's lease while processing (a crashed worker's delivery
    -- becomes claimable again then).
    next_attempt_at INTEGER NOT NULL,
    lease_owner     TEXT,
    last_error      TEXT,
    processed_by    TEXT,
    processed_at    INTEGER
);
-- Bodies live apart from the queue row, so the worker's small state updates do
-- not rewrite a payload of many kilobytes each time.
CREATE TABLE delivery_payloads (
    id          INTEGER PRIMARY KEY REFERENCES deliveries (id),
    payload     TEXT    NOT NULL
);

CREATE INDEX deliveries_ready ON deliveries (next_attempt_at) WHERE state IN ('pending', 'processing');

CREATE TABLE people (
    id           INTEGER PRIMARY KEY,
    person_key   TEXT    NOT NULL UNIQUE,   -- configured name, GitHub login, or email
    display_name TEXT    NOT NULL,
    github_login TEXT,
    discord_id   TEXT,
    configured   INTEGER NOT NULL DEFAULT 0,  -- 1: from [[people]] in the configuration
    created_at   INTEGER NOT NULL
);

-- How a person shows up in commits and events: an email, a GitHub login, …
CREATE TABLE identities (
    id         INTEGER PRIMARY KEY,
    person_id  INTEGER NOT NULL REFERENCES people (id),
    kind       TEXT    NOT NULL,               -- email|github
    value      TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (kind, value)
);
