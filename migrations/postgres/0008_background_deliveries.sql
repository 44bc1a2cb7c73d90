-- Background deliveries (the reconcile loop's mirror fetches) are claimed only
-- when no live webhook delivery is due, so thousands of them never delay a
-- check run becoming a signal.
ALTER TABLE deliveries ADD COLUMN priority BIGINT NOT NULL DEFAULT 0; -- 0 live, 1 background
CREATE INDEX deliveries_ready_by_priority ON deliveries (priority, next_attempt_at)
    WHERE state IN ('pending', 'processing');
DROP INDEX deliveries_ready;
