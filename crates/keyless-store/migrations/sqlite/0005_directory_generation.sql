-- A counter every write to accounts, providers, roles, policies or guardrails advances in its
-- own transaction, so that other replicas (and servers sharing the file) see the change by
-- polling one row and rebuild their directory.
CREATE TABLE directory_generation (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    generation INTEGER NOT NULL
);
INSERT INTO directory_generation (id, generation) VALUES (1, 0);
