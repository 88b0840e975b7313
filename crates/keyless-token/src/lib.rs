//! Temporary credentials: ASIA access key ids, derived secrets, sealed session tokens and the key ring.
