-- Webhook payloads (a few KB of JSON each) are compressed with lz4, several times
-- cheaper in CPU than PostgreSQL's default pglz. Servers built without lz4 keep pglz.
DO $$
BEGIN
    ALTER TABLE delivery_payloads ALTER COLUMN payload SET COMPRESSION lz4;
EXCEPTION WHEN others THEN
    RAISE NOTICE 'lz4 is not available; payloads keep the default compression';
END
$$;
