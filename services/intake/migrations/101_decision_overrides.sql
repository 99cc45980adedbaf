-- Revision 2: a clinician's override is audited with the decision it changed:
-- who overrode, and the reason codes it lifted (DESIGN.md §4.1 "Overrides").
ALTER TABLE decisions ADD COLUMN overridden_by text;
ALTER TABLE decisions ADD COLUMN overridden jsonb NOT NULL DEFAULT '[]'::jsonb;
