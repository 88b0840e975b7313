//! Shared vocabulary of keyless: account ids, ARNs, secret newtypes, the clock port, and UTC
//! instants written as AWS writes them.
//!
//! This crate is pure: no I/O, and it never reads the clock itself. Code that needs the
//! current time takes a `now` argument, or a [`Clock`] at the edges.

mod arn;
mod clock;
mod ids;
mod secret;
pub mod time_text;

pub use arn::{Arn, ArnError};
pub use clock::{Clock, FixedClock, SystemClock};
pub use ids::{AccountId, IdError};
pub use secret::{SecretBytes, SecretString};
pub use time::OffsetDateTime;
