-- Attributed commits of each repository, landed (on the default branch) or not
-- (open pull requests). Facts are columns; the whole attribution record is kept
-- as JSON for later stages.
CREATE TABLE commits (
    id              INTEGER PRIMARY KEY,
    repository_id   INTEGER NOT NULL REFERENCES repositories (id),
    sha             TEXT    NOT NULL,
    subject         TEXT    NOT NULL,
    person          TEXT    NOT NULL,
    credit          TEXT    NOT NULL,           -- author | co_author | committer | agent
    merged_by       TEXT,                       -- GitHub login of whoever merged its pull request
    author_email    TEXT    NOT NULL,
    authored_at     INTEGER NOT NULL,           -- epoch milliseconds
    ai              INTEGER NOT NULL,           -- 0 | 1
    agents          TEXT    NOT NULL,           -- JSON array of slugs
    model           TEXT,
    kind            TEXT    NOT NULL,
    kind_source     TEXT    NOT NULL,
    usage_tokens    INTEGER,
    changed_lines   INTEGER NOT NULL,           -- added + deleted - moved pairs, excluded paths left out
    patch_id        TEXT,
    merge           INTEGER NOT NULL,
    record          TEXT    NOT NULL,           -- the full attribution record (JSON)
    landed          INTEGER NOT NULL DEFAULT 0, -- 0 | 1: reachable from the default branch
    landed_at       INTEGER,
    pull_request    INTEGER,
    first_seen_at   INTEGER NOT NULL,
    UNIQUE (repository_id, sha)
);
CREATE INDEX commits_landed ON commits (repository_id, landed);

-- The default-branch head whose history has been attributed, so the next
-- fetch only walks what is new.
ALTER TABLE repositories ADD COLUMN landed_tip TEXT;
