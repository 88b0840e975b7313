//! Unit tests of the IAM use cases.
