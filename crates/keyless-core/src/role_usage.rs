//! When each role last had a session issued, for IAM's `RoleLastUsed` (the figure teams use to
//! find roles nobody needs any more). The request path only notes the instant in memory; a
//! server task writes what is new to the store in batches and reads back what every server
//! wrote, so `GetRole` on any replica shows the latest use within one flush interval. Roles
//! are keyed by unique id, so a role deleted and created again starts unused, as in IAM.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use keyless_types::OffsetDateTime;

/// Role uses seen by this process and read back from the store.
#[derive(Debug, Default)]
pub struct RoleUsage {
    inner: Mutex<Uses>,
}

#[derive(Debug, Default)]
struct Uses {
    /// The latest use of each role the store is known to hold.
    saved: HashMap<String, OffsetDateTime>,
    /// Uses noted since the last flush.
    unsaved: HashMap<String, OffsetDateTime>,
}

impl RoleUsage {
    /// A session of the role with unique id `role_id` was issued at `at`.
    pub fn used(&self, role_id: &str, at: OffsetDateTime) {
        let mut uses = self.lock();
        if let Some(t) = uses.unsaved.get_mut(role_id) {
            if at > *t {
                *t = at;
            }
            return;
        }
        if uses.saved.get(role_id).is_some_and(|t| *t >= at) {
            return;
        }
        uses.unsaved.insert(role_id.to_owned(), at);
    }

    /// The latest use of the role with unique id `role_id`, if any is known.
    pub fn last_used(&self, role_id: &str) -> Option<OffsetDateTime> {
        let uses = self.lock();
        let saved = uses.saved.get(role_id).copied();
        let unsaved = uses.unsaved.get(role_id).copied();
        saved.max(unsaved)
    }

    /// The uses noted since the last call, for the store; they count as saved from now on (see
    /// [`RoleUsage::unsaved_again`] when the write fails).
    pub fn take_unsaved(&self) -> Vec<(String, OffsetDateTime)> {
        let mut uses = self.lock();
        let taken: Vec<(String, OffsetDateTime)> = uses.unsaved.drain().collect();
        for (id, at) in &taken {
            keep_latest(&mut uses.saved, id, *at);
        }
        taken
    }

    /// Puts back uses whose write failed, to be tried again at the next flush.
    pub fn unsaved_again(&self, uses: Vec<(String, OffsetDateTime)>) {
        let mut current = self.lock();
        for (id, at) in uses {
            let newer = current.unsaved.get(&id).is_none_or(|t| *t < at);
            if newer {
                current.unsaved.insert(id, at);
            }
        }
    }

    /// Takes in what the store holds (every server's uses).
    pub fn merge_saved(&self, stored: Vec<(String, OffsetDateTime)>) {
        let mut uses = self.lock();
        for (id, at) in stored {
            keep_latest(&mut uses.saved, &id, at);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Uses> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn keep_latest(map: &mut HashMap<String, OffsetDateTime>, id: &str, at: OffsetDateTime) {
    match map.get_mut(id) {
        Some(t) if *t >= at => {}
        Some(t) => *t = at,
        None => {
            map.insert(id.to_owned(), at);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(s).unwrap()
    }

    #[test]
    fn the_latest_use_wins_wherever_it_was_seen() {
        let usage = RoleUsage::default();
        assert_eq!(usage.last_used("AROAONE"), None);
        usage.used("AROAONE", at(200));
        usage.used("AROAONE", at(100));
        assert_eq!(usage.last_used("AROAONE"), Some(at(200)));
        assert_eq!(usage.take_unsaved(), vec![("AROAONE".to_owned(), at(200))]);
        assert!(usage.take_unsaved().is_empty());
        // An older use after the flush is nothing new; another server's newer one is.
        usage.used("AROAONE", at(150));
        assert!(usage.take_unsaved().is_empty());
        usage.merge_saved(vec![
            ("AROAONE".into(), at(300)),
            ("AROATWO".into(), at(50)),
        ]);
        assert_eq!(usage.last_used("AROAONE"), Some(at(300)));
        assert_eq!(usage.last_used("AROATWO"), Some(at(50)));
        usage.merge_saved(vec![("AROAONE".into(), at(250))]);
        assert_eq!(usage.last_used("AROAONE"), Some(at(300)));
    }

    #[test]
    fn uses_whose_write_failed_are_written_at_the_next_flush() {
        let usage = RoleUsage::default();
        usage.used("AROAONE", at(100));
        let taken = usage.take_unsaved();
        usage.used("AROAONE", at(120));
        usage.unsaved_again(taken);
        assert_eq!(usage.take_unsaved(), vec![("AROAONE".to_owned(), at(120))]);
        usage.used("AROATWO", at(10));
        let taken = usage.take_unsaved();
        usage.unsaved_again(taken);
        assert_eq!(usage.take_unsaved(), vec![("AROATWO".to_owned(), at(10))]);
    }
}
