-- The audit outbox of revocations: audited_seq is the audit log `seq` of the record that made a
-- revocation durable in the log, set once (only while NULL) by whoever wrote that record. A row
-- left NULL (its writer was killed between the store write and the record) is recorded by the
-- next server or CLI that holds the log. Rows stored before this column existed start NULL
-- and are recorded once more: a duplicate is better than a revocation without a record.
ALTER TABLE revocations ADD COLUMN audited_seq INTEGER;
CREATE INDEX revocations_unaudited ON revocations (id) WHERE audited_seq IS NULL;
