-- A counter every statement that adds or deletes revocations advances in its own transaction,
-- so that pollers read one row instead of an aggregate over the whole table (see
-- Store::revocations_generation). Triggers rather than code in the store, so that every
-- writer advances it: an older replica still running, the CLI, an operator's hand-written SQL.
-- Updates (the audit mark) change nothing the in-memory set depends on and leave it alone.
--
-- The row's lock, held to commit, orders the writers: a poller that reads generation G sees
-- every write that advanced it up to G, and any later commit moves it past G. Per statement,
-- and only when it touched a row, so a purge of many rows writes the row once and a purge
-- of none not at all.
CREATE TABLE revocation_generation (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    generation BIGINT NOT NULL
);
INSERT INTO revocation_generation (id, generation) VALUES (1, 0);

CREATE FUNCTION advance_revocation_generation() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        UPDATE revocation_generation SET generation = generation + 1 WHERE id = 1;
    ELSIF EXISTS (SELECT 1 FROM changed_rows) THEN
        UPDATE revocation_generation SET generation = generation + 1 WHERE id = 1;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER revocations_added AFTER INSERT ON revocations
    REFERENCING NEW TABLE AS changed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION advance_revocation_generation();

CREATE TRIGGER revocations_deleted AFTER DELETE ON revocations
    REFERENCING OLD TABLE AS changed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION advance_revocation_generation();

CREATE TRIGGER revocations_truncated AFTER TRUNCATE ON revocations
    FOR EACH STATEMENT EXECUTE FUNCTION advance_revocation_generation();
