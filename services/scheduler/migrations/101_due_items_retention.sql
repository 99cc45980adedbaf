-- Emitted due items are kept a while (late-marking, operators' questions), then pruned.
CREATE INDEX due_items_emitted ON due_items (emitted_at) WHERE emitted_at IS NOT NULL;
