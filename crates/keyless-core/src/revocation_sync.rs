//! Keeping a process's in-memory revocations in step with the store by reading only the rows
//! it has not seen ([`crate::ports::Store::revocations_after`]) instead of the whole table.
//!
//! A read of new rows alone cannot be trusted: with Postgres an id taken from the sequence can
//! commit after a higher one was read, and purges remove rows. So every merge is checked: the
//! merged list's own [`RevocationStamp`] must equal the stamp read from the store *before* the
//! rows. Equal, the list holds what the table held when the stamp was read, and anything
//! committed since changes the stamp the next poll sees. Not equal, [`merge`] says
//! [`Merged::NeedFullReload`] and the caller reads every row, as it did before: a set that
//! silently missed a committed revocation would let a revoked credential work. Rows read that
//! the list lacks while the stamps agree also force a full read: the stamp is a checksum, and
//! the rows show where it was fooled.

use std::collections::HashSet;
use std::sync::Arc;

use crate::ports::RevocationStamp;
use crate::revocation::Revocation;

/// The most rows one poll reads after the last id seen. More than this is a burst (a script
/// revoking session by session); one full read of the table is then as cheap as paging.
pub const PAGE: u32 = 1024;

/// How far below the highest id read a poll reads again, so that ids that committed out of order
/// shortly after a higher one (concurrent writers on Postgres) are picked up without a full read.
pub const LOOKBACK: i64 = 64;

/// The stamp [`crate::ports::Store::revocations_stamp`] gives for a table holding exactly `rows`.
pub fn stamp_of<'a>(rows: impl IntoIterator<Item = &'a Revocation>) -> RevocationStamp {
    rows.into_iter().fold((0, 0, 0), |(max, count, sum), r| {
        (max.max(r.id), count + 1, sum.wrapping_add(r.id))
    })
}

/// The id to pass to `revocations_after` when the store was read through `read_through`.
pub fn read_after(read_through: i64) -> i64 {
    read_through.saturating_sub(LOOKBACK)
}

/// What one poll read from the store, in this order.
#[derive(Debug, Clone)]
pub struct Poll {
    /// The store's stamp, read first.
    pub stamp: RevocationStamp,
    /// Then `revocations_after(after, limit)`.
    pub rows: Vec<Revocation>,
    /// The `after` passed ([`read_after`] of the list's `read_through`).
    pub after: i64,
    /// The `limit` passed.
    pub limit: u32,
}

/// The outcome of [`merge`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Merged {
    /// The list already matches the store.
    Unchanged,
    /// The merged list matches the store's stamp.
    Incremental {
        /// The new list: when `purged` is 0, the old list followed by the `added` rows.
        list: Vec<Arc<Revocation>>,
        /// Every row with an id up to this was read ([`Poll::stamp`]'s largest id).
        read_through: i64,
        /// Rows added from the poll.
        added: usize,
        /// Rows dropped as purged.
        purged: usize,
    },
    /// The rows read do not explain the stamp: read every row. The text says why, for the log.
    NeedFullReload(&'static str),
}

/// Merges the rows of `poll` into `list` (the in-memory revocations, whose own stamp is
/// `list_stamp`) and checks the result against the store's stamp; see the module docs.
///
/// A row already in the list (one this process stored and put in force itself) is not added
/// twice; rows above the stamp's largest id committed after the stamp was read and are left for
/// the next poll. When the store holds fewer rows than the merge, they are taken as purged: a
/// purge deletes every row expiring up to its clock's `now`, so the rows dropped are those with
/// the earliest expiry, as many as the counts differ, whatever the purging server's clock said
/// (it may differ from ours); the stamp checks the guess.
pub fn merge(list: &[Arc<Revocation>], list_stamp: RevocationStamp, poll: Poll) -> Merged {
    let stamp = poll.stamp;
    let page_full = poll.rows.len() >= poll.limit as usize;
    let last_read = poll.rows.last().map_or(poll.after, |r| r.id);
    if page_full && last_read < stamp.0 {
        return Merged::NeedFullReload("more new revocations than one page");
    }
    let new_rows = rows_not_in(list, poll);
    if stamp == list_stamp {
        return if new_rows.is_empty() {
            Merged::Unchanged
        } else {
            // Equal stamps, yet the store has a row this list lacks: the stamp cannot be trusted.
            Merged::NeedFullReload("the store's stamp matches, but it holds revocations not read")
        };
    }
    let added = new_rows.len();
    let mut merged = list.to_vec();
    merged.extend(new_rows);
    checked(merged, stamp, added)
}

/// The rows of `poll` up to its stamp's largest id that `list` lacks.
fn rows_not_in(list: &[Arc<Revocation>], poll: Poll) -> Vec<Arc<Revocation>> {
    // Only rows above `after` can have been read, and few of the list's are up there.
    let present: HashSet<i64> = list
        .iter()
        .filter(|r| r.id > poll.after)
        .map(|r| r.id)
        .collect();
    poll.rows
        .into_iter()
        .filter(|r| r.id <= poll.stamp.0 && !present.contains(&r.id))
        .map(Arc::new)
        .collect()
}

/// `merged` (with `added` new rows) if its stamp is the store's `stamp`, or else without the
/// rows a purge took if that is.
fn checked(merged: Vec<Arc<Revocation>>, stamp: RevocationStamp, added: usize) -> Merged {
    let read_through = stamp.0;
    if stamp_of(merged.iter().map(Arc::as_ref)) == stamp {
        return Merged::Incremental {
            list: merged,
            read_through,
            added,
            purged: 0,
        };
    }
    match without_purged(&merged, stamp.1) {
        Some(kept) if stamp_of(kept.iter().map(Arc::as_ref)) == stamp => Merged::Incremental {
            purged: merged.len() - kept.len(),
            list: kept,
            read_through,
            added,
        },
        _ => Merged::NeedFullReload(
            "the stored revocations differ from those read (an id committed out of order, or rows deleted otherwise than by a purge)",
        ),
    }
}

/// `rows` without the ones a purge leaving `count` rows would have deleted: every row expiring
/// no later than the earliest expiries, as many as there are rows too many. (If expiries tie
/// across that cut, more are dropped, and the stamp check that follows fails.) `None` when
/// there are not more than `count` rows.
fn without_purged(rows: &[Arc<Revocation>], count: i64) -> Option<Vec<Arc<Revocation>>> {
    let keep = usize::try_from(count).ok()?;
    let drop = rows.len().checked_sub(keep).filter(|d| *d > 0)?;
    let mut expiries: Vec<_> = rows.iter().map(|r| r.spec.expires_at).collect();
    let cutoff = *expiries.select_nth_unstable(drop - 1).1;
    Some(
        rows.iter()
            .filter(|r| r.spec.expires_at > cutoff)
            .cloned()
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::revocation::{NewRevocation, Target};
    use keyless_types::OffsetDateTime;

    fn at(secs: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000 + secs).unwrap()
    }

    /// Revocation `id`, expiring at `at(expires)`.
    fn row(id: i64, expires: i64) -> Revocation {
        Revocation {
            id,
            spec: NewRevocation {
                target: Target::Session {
                    access_key_id: format!("ASIA{id:016}"),
                },
                account: None,
                issued_before: at(0),
                created_at: at(0),
                expires_at: at(expires),
                reason: String::new(),
                created_by: "operator".into(),
            },
            audited_seq: None,
        }
    }

    fn list(rows: &[Revocation]) -> Vec<Arc<Revocation>> {
        rows.iter().cloned().map(Arc::new).collect()
    }

    fn ids(list: &[Arc<Revocation>]) -> Vec<i64> {
        list.iter().map(|r| r.id).collect()
    }

    /// A poll of a table holding `table`, by a process that read it through `read_through`.
    fn poll(table: &[Revocation], read_through: i64) -> Poll {
        let after = read_after(read_through);
        Poll {
            stamp: stamp_of(table),
            rows: table.iter().filter(|r| r.id > after).cloned().collect(),
            after,
            limit: PAGE,
        }
    }

    fn merge_into(mine: &[Revocation], poll: Poll) -> Merged {
        merge(&list(mine), stamp_of(mine), poll)
    }

    fn incremental_ids(merged: Merged) -> (Vec<i64>, usize, usize) {
        match merged {
            Merged::Incremental {
                list,
                added,
                purged,
                ..
            } => (ids(&list), added, purged),
            other => panic!("expected an incremental merge, got {other:?}"),
        }
    }

    #[test]
    fn the_stamp_is_max_count_and_sum() {
        assert_eq!(stamp_of(&[]), (0, 0, 0));
        assert_eq!(stamp_of(&[row(3, 9), row(7, 9), row(5, 9)]), (7, 3, 15));
    }

    #[test]
    fn new_rows_are_appended_and_read_through_the_stamps_max() {
        let mine = [row(1, 100), row(2, 100)];
        let table = [row(1, 100), row(2, 100), row(3, 100), row(4, 100)];
        match merge_into(&mine, poll(&table, 2)) {
            Merged::Incremental {
                list,
                read_through,
                added,
                purged,
            } => {
                assert_eq!(ids(&list), vec![1, 2, 3, 4]);
                assert_eq!((read_through, added, purged), (4, 2, 0));
                assert_eq!(list[2].as_ref(), &table[2]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_list_matching_the_stamp_is_unchanged() {
        let mine = [row(1, 100), row(2, 100)];
        assert_eq!(merge_into(&mine, poll(&mine, 2)), Merged::Unchanged);
    }

    #[test]
    fn a_stamp_that_matches_while_a_row_is_missing_forces_a_full_reload() {
        // Rows 1 and 4 purged, 2 and 3 committed late: max, count and sum all agree (6, 3, 11),
        // but the rows read show what the stamp hides.
        let mine = [row(1, 100), row(4, 100), row(6, 100)];
        let table = [row(2, 100), row(3, 100), row(6, 100)];
        assert_eq!(stamp_of(&mine), stamp_of(&table));
        assert_eq!(
            merge_into(&mine, poll(&table, 6)),
            Merged::NeedFullReload("the store's stamp matches, but it holds revocations not read")
        );
    }

    #[test]
    fn a_row_this_process_added_itself_is_not_added_twice() {
        // Row 3 came from this process's API (in force already, not read from the store).
        let mine = [row(1, 100), row(2, 100), row(3, 100)];
        let table = [row(1, 100), row(2, 100), row(3, 100), row(4, 100)];
        assert_eq!(
            incremental_ids(merge_into(&mine, poll(&table, 2))),
            (vec![1, 2, 3, 4], 1, 0)
        );
    }

    #[test]
    fn an_id_that_commits_late_within_the_lookback_is_picked_up() {
        // 5 was read; 4 committed after it.
        let mine = [row(1, 100), row(2, 100), row(3, 100), row(5, 100)];
        let table = [
            row(1, 100),
            row(2, 100),
            row(3, 100),
            row(4, 100),
            row(5, 100),
        ];
        assert_eq!(
            incremental_ids(merge_into(&mine, poll(&table, 5))),
            (vec![1, 2, 3, 5, 4], 1, 0)
        );
    }

    #[test]
    fn a_gap_below_what_was_read_forces_a_full_reload() {
        // Row 10 committed after rows up to 100 were read and the lookback passed it.
        let mine: Vec<Revocation> = (1..=100)
            .filter(|i| *i != 10)
            .map(|i| row(i, 100))
            .collect();
        let table: Vec<Revocation> = (1..=101).map(|i| row(i, 100)).collect();
        assert!(matches!(
            merge_into(&mine, poll(&table, 100)),
            Merged::NeedFullReload(_)
        ));
        // Even when nothing above was added: the count and sum show it, not the max.
        let table: Vec<Revocation> = (1..=100).map(|i| row(i, 100)).collect();
        assert!(matches!(
            merge_into(&mine, poll(&table, 100)),
            Merged::NeedFullReload(_)
        ));
    }

    #[test]
    fn rows_committed_after_the_stamp_wait_for_the_next_poll() {
        let mine = [row(1, 100)];
        let table = [row(1, 100), row(2, 100)];
        let mut p = poll(&table, 1);
        p.rows.push(row(3, 100));
        assert_eq!(incremental_ids(merge_into(&mine, p)), (vec![1, 2], 1, 0));
    }

    #[test]
    fn a_full_page_below_the_stamps_max_forces_a_full_reload() {
        let table: Vec<Revocation> = (1..=10).map(|i| row(i, 100)).collect();
        let mut p = poll(&table, 0);
        p.limit = 4;
        p.rows.truncate(4);
        assert_eq!(
            merge_into(&[], p),
            Merged::NeedFullReload("more new revocations than one page")
        );
        // A full page that reaches the stamp's max is all there is.
        let mut p = poll(&table, 0);
        p.limit = 10;
        assert_eq!(incremental_ids(merge_into(&[], p)).1, 10);
    }

    #[test]
    fn a_purge_drops_the_earliest_expiring_rows_whatever_the_purgers_clock() {
        let mine = [row(1, 50), row(2, 10), row(3, 70), row(4, 20), row(5, 90)];
        // Another server purged up to its now, somewhere in [20, 50): rows 2 and 4.
        let table = [row(1, 50), row(3, 70), row(5, 90)];
        assert_eq!(
            incremental_ids(merge_into(&mine, poll(&table, 5))),
            (vec![1, 3, 5], 0, 2)
        );
        // With a revocation added meanwhile.
        let table = [row(1, 50), row(3, 70), row(5, 90), row(6, 200)];
        assert_eq!(
            incremental_ids(merge_into(&mine, poll(&table, 5))),
            (vec![1, 3, 5, 6], 1, 2)
        );
    }

    #[test]
    fn a_purge_that_does_not_cut_cleanly_by_expiry_forces_a_full_reload() {
        let mine = [row(1, 10), row(2, 10), row(3, 70)];
        // One of two rows with the same expiry gone: not what a purge does.
        let table = [row(2, 10), row(3, 70)];
        assert!(matches!(
            merge_into(&mine, poll(&table, 3)),
            Merged::NeedFullReload(_)
        ));
        // A later-expiring row gone, an earlier one kept: not a purge either.
        let mine = [row(1, 10), row(2, 20), row(3, 70)];
        let table = [row(1, 10), row(3, 70)];
        assert!(matches!(
            merge_into(&mine, poll(&table, 3)),
            Merged::NeedFullReload(_)
        ));
    }

    #[test]
    fn a_purge_hiding_a_late_commit_forces_a_full_reload() {
        // Rows 2 and 3 (expiring first) purged; row 1 committed late, below the lookback. The
        // counts differ by one, as if only row 2 had been purged, but the sums do not match.
        let mut mine: Vec<Revocation> = vec![row(2, 5), row(3, 6)];
        mine.extend((100..200).map(|i| row(i, 100)));
        let mut table: Vec<Revocation> = vec![row(1, 100)];
        table.extend((100..200).map(|i| row(i, 100)));
        assert!(matches!(
            merge_into(&mine, poll(&table, 199)),
            Merged::NeedFullReload(_)
        ));
    }

    #[test]
    fn everything_purged_leaves_an_empty_list() {
        let mine = [row(1, 10), row(2, 20)];
        assert_eq!(
            incremental_ids(merge_into(&mine, poll(&[], 2))),
            (vec![], 0, 2)
        );
    }
}
