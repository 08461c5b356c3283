-- Why a failed operation failed (envs.core.model.FailureReason): counted by reason in
-- the metrics, where the error's text is too varied to be a label.
ALTER TABLE operations ADD COLUMN reason text;
