-- Which job (and so which lease) an operation ran under, so a lock its dead worker left
-- can be told apart from one a live run holds.
ALTER TABLE operations ADD COLUMN runner text;
