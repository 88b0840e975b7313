-- A counter every statement that adds or deletes revocations advances in its own transaction,
-- so that pollers read one row instead of an aggregate over the whole table (see
-- Store::revocations_generation). Triggers rather than code in the store, so that every
-- writer advances it: an older binary still running, the CLI, an operator's hand-written SQL.
-- Updates (the audit mark) change nothing the in-memory set depends on and leave it alone.
CREATE TABLE revocation_generation (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    generation INTEGER NOT NULL
);
INSERT INTO revocation_generation (id, generation) VALUES (1, 0);

CREATE TRIGGER revocation_added AFTER INSERT ON revocations
BEGIN
    UPDATE revocation_generation SET generation = generation + 1 WHERE id = 1;
END;

CREATE TRIGGER revocation_deleted AFTER DELETE ON revocations
BEGIN
    UPDATE revocation_generation SET generation = generation + 1 WHERE id = 1;
END;
