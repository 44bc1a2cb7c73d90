-- Hardening before scoring reads these facts.

-- A commit force-pushed off the default branch is no longer landed; when and why
-- it stopped being landed is kept, so scoring can claw back what it paid.
ALTER TABLE commits ADD COLUMN unlanded_at INTEGER;
ALTER TABLE commits ADD COLUMN unlanded_reason TEXT;

-- Repository names are case-insensitive on GitHub: names are stored in lower
-- case. (Where both spellings were stored already, the lower-case one is kept
-- as it is and the other row stays as history.)
UPDATE repositories SET full_name = lower(full_name)
WHERE full_name <> lower(full_name)
  AND NOT EXISTS (
      SELECT 1 FROM repositories other
      WHERE other.id <> repositories.id AND other.full_name = lower(repositories.full_name));

-- Idempotency keys belong to the API token that used them: stored as
-- api:<token id>:<key>, so another token's key is never a replay.
UPDATE signals SET idempotency_key =
    'api:' || CAST((SELECT t.id FROM api_tokens t WHERE 'api:' || t.name = signals.source) AS TEXT)
    || ':' || idempotency_key
WHERE idempotency_key IS NOT NULL
  AND EXISTS (SELECT 1 FROM api_tokens t WHERE 'api:' || t.name = signals.source);

-- People not configured in [[people]] and known by a GitHub login get the key
-- @login, so a stranger whose login equals a configured name is never merged
-- into that person. (Email keys contain an @ already; configured names may not.)
UPDATE commits SET person = '@' || person
WHERE person IN (SELECT person_key FROM people WHERE configured = 0 AND person_key NOT LIKE '%@%');
UPDATE people SET person_key = '@' || person_key
WHERE configured = 0 AND person_key NOT LIKE '%@%';
