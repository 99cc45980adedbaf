-- Dead letters keep what came exactly (issue 18): a null value (a tombstone) has no
-- bytes, and a key is kept as bytes too (the key column holds an escaped, printable
-- form: a NUL cannot be stored in text).
ALTER TABLE dead_letters ALTER COLUMN original DROP NOT NULL;
ALTER TABLE dead_letters ADD COLUMN original_key bytea;
