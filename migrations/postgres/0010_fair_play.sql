-- Fair play: what scoring needs so that splitting, near-duplicates, borrowed
-- CI, formatting churn, inflated kinds and hostile signals earn nothing.

-- The kind the subject or the diff gives when a trailer declared another (the
-- tier is the lower of the two); a change with no content but whitespace
-- (formatting-only, 1); the MinHash signature of the added lines (hex); the
-- changed paths outside excluded ones (JSON array), for change sets; and how
-- the commit's pull request is known: 'branch' (seen on refs/pull/N/head),
-- 'merge:SHA' (brought in by merge commit SHA) or 'subject' (a "(#N)" only).
ALTER TABLE commits ADD COLUMN detected_kind TEXT;
ALTER TABLE commits ADD COLUMN formatting_only BIGINT NOT NULL DEFAULT 0;
ALTER TABLE commits ADD COLUMN minhash TEXT;
ALTER TABLE commits ADD COLUMN files TEXT;
ALTER TABLE commits ADD COLUMN pull_request_via TEXT;

-- The signal names a token may post (JSON array); NULL: its role's default
-- (report: ci only; admin: any).
ALTER TABLE api_tokens ADD COLUMN signals TEXT;

-- The API token that posted a signal (NULL: GitHub or git).
ALTER TABLE signals ADD COLUMN token_id BIGINT;

-- The person a (read) token belongs to: its dashboard login opens `/me`.
ALTER TABLE api_tokens ADD COLUMN person TEXT;
