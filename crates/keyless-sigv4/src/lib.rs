//! AWS Signature Version 4 verification in every form real clients send (pure, no I/O).
