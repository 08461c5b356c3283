-- The audit trail as a hash chain (envs.core.audit_chain): each entry's hash covers its
-- content and the previous entry's hash. Entries written before this stay unchained.
ALTER TABLE audit_log ADD COLUMN prev_hash TEXT;
ALTER TABLE audit_log ADD COLUMN hash TEXT;
