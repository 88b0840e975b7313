//! IAM policy language: parse, validate, evaluate and explain every policy type, as AWS does.
