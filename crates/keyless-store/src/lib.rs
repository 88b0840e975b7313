//! SQLite and Postgres implementations of the keyless store port, with migrations.
