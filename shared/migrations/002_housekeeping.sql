-- Indexes for pruning published outbox rows and old inbox entries (shared/housekeeping.py).
CREATE INDEX outbox_sent ON outbox (sent_at) WHERE sent_at IS NOT NULL;
CREATE INDEX inbox_handled ON inbox (handled_at);
