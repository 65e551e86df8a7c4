//! What one place adds to the daily progress series, as changes at quarter hours: the projection keeps their
//! sums per grid, village and town (`area_progress`), so a series is read from a few rows per day instead of
//! scanning places and visits.
//!
//! A place eligible for an indicator counts from the start (bucket [`FROM_THE_START`]); it is reached from the
//! quarter hour of its first reach. A place with a "gone" visit leaves the denominator after that visit and
//! comes back after a later visit that found it; its changes are computed here from its visits. The sum of
//! the changes in buckets before a day's end is coverage at that day's end, exactly, whenever the day ends on
//! a quarter hour (every UTC offset in use does).

use std::collections::BTreeMap;

/// The width of a bucket: a quarter of an hour, in milliseconds.
pub const BUCKET_MS: i64 = 15 * 60 * 1000;

/// The bucket of the eligible places themselves, before any visit.
pub const FROM_THE_START: i64 = -1;

/// The bucket of a change at time `at` (milliseconds): it counts for every day ending after it. Changes before
/// 1970 count from bucket 0, which is before any report day.
pub fn bucket(at: i64) -> i64 {
    at.max(0) / BUCKET_MS
}

/// One visit as the gone timeline needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VisitMark {
    pub at: i64,
    pub visit_id: String,
    pub gone: bool,
}

/// (indicator, bucket) -> (change of eligible, change of reached).
pub type Changes = BTreeMap<(String, i64), (i64, i64)>;

/// The changes one place contributes. `indicators` are its eligible indicators with their first reach time;
/// `visits` are its visits, needed only when one of them found it gone (otherwise they change nothing).
pub fn place_changes(indicators: &[(String, Option<i64>)], visits: &[VisitMark]) -> Changes {
    let timeline = gone_timeline(visits);
    let mut changes = Changes::new();
    let mut add = |indicator: &str, bucket: i64, eligible: i64, reached: i64| {
        let entry = changes.entry((indicator.to_string(), bucket)).or_default();
        *entry = (entry.0 + eligible, entry.1 + reached);
    };
    for (indicator, reached_at) in indicators {
        add(indicator, FROM_THE_START, 1, 0);
        if timeline.is_empty() {
            if let Some(r) = reached_at {
                add(indicator, bucket(*r), 0, 1);
            }
            continue;
        }
        // The contribution can only change at a visit time or at the first reach.
        let mut times: Vec<i64> = timeline.iter().map(|(at, _)| *at).chain(*reached_at).collect();
        times.sort_unstable();
        times.dedup();
        let (mut counted, mut reached) = (1, 0);
        let mut gone = false;
        let mut next_status = timeline.iter().peekable();
        for t in times {
            while let Some((_, g)) = next_status.next_if(|(at, _)| *at <= t) {
                gone = *g;
            }
            let now_counted = i64::from(!gone);
            let now_reached = now_counted * i64::from(reached_at.is_some_and(|r| r <= t));
            if (now_counted, now_reached) != (counted, reached) {
                add(indicator, bucket(t), now_counted - counted, now_reached - reached);
                (counted, reached) = (now_counted, now_reached);
            }
        }
    }
    changes.retain(|_, c| *c != (0, 0));
    changes
}

/// Whether the place is gone after each visit time, in time order; empty if no visit ever found it gone. Of
/// visits at the same time the one with the greatest id is the last, as everywhere else.
fn gone_timeline(visits: &[VisitMark]) -> Vec<(i64, bool)> {
    if !visits.iter().any(|v| v.gone) {
        return Vec::new();
    }
    let mut sorted: Vec<&VisitMark> = visits.iter().collect();
    sorted.sort_by(|a, b| (a.at, &a.visit_id).cmp(&(b.at, &b.visit_id)));
    let mut timeline: Vec<(i64, bool)> = Vec::new();
    for v in sorted {
        match timeline.last_mut() {
            Some(last) if last.0 == v.at => last.1 = v.gone,
            _ => timeline.push((v.at, v.gone)),
        }
    }
    timeline
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = 3600 * 1000;

    fn mark(at: i64, id: &str, gone: bool) -> VisitMark {
        VisitMark { at, visit_id: id.into(), gone }
    }

    fn ind(id: &str, reached_at: Option<i64>) -> (String, Option<i64>) {
        (id.to_string(), reached_at)
    }

    /// (eligible, reached) at a day end `end`: the changes in buckets before it.
    fn at_end(changes: &Changes, indicator: &str, end: i64) -> (i64, i64) {
        changes
            .iter()
            .filter(|((i, b), _)| i == indicator && *b < end / BUCKET_MS)
            .fold((0, 0), |(e, r), (_, (de, dr))| (e + de, r + dr))
    }

    #[test]
    fn a_place_never_gone_counts_from_the_start_and_is_reached_from_its_first_reach() {
        let c = place_changes(&[ind("handbook", Some(10 * H + 5)), ind("awareness", None)], &[]);
        assert_eq!(at_end(&c, "handbook", 10 * H), (1, 0));
        assert_eq!(at_end(&c, "handbook", 10 * H + BUCKET_MS), (1, 1));
        assert_eq!(at_end(&c, "awareness", 100 * H), (1, 0));
        // Visits that never found it gone change nothing.
        assert_eq!(c, place_changes(&[ind("handbook", Some(10 * H + 5)), ind("awareness", None)], &[]));
    }

    #[test]
    fn a_gone_place_leaves_the_denominator_until_a_later_visit_finds_it() {
        let visits = [mark(10 * H, "a", false), mark(20 * H, "b", true), mark(30 * H, "c", false)];
        let c = place_changes(&[ind("poster", Some(30 * H))], &visits);
        assert_eq!(at_end(&c, "poster", 10 * H), (1, 0));
        assert_eq!(at_end(&c, "poster", 21 * H), (0, 0));
        assert_eq!(at_end(&c, "poster", 30 * H), (0, 0));
        assert_eq!(at_end(&c, "poster", 31 * H), (1, 1));
        // Reached before it was found gone: reached again when it comes back.
        let c = place_changes(&[ind("poster", Some(10 * H))], &visits);
        assert_eq!(at_end(&c, "poster", 11 * H), (1, 1));
        assert_eq!(at_end(&c, "poster", 21 * H), (0, 0));
        assert_eq!(at_end(&c, "poster", 31 * H), (1, 1));
    }

    #[test]
    fn of_visits_at_the_same_time_the_greatest_id_decides() {
        let c = place_changes(&[ind("led", None)], &[mark(5 * H, "b", true), mark(5 * H, "a", false)]);
        assert_eq!(at_end(&c, "led", 6 * H), (0, 0));
        let c = place_changes(&[ind("led", None)], &[mark(5 * H, "a", true), mark(5 * H, "b", false)]);
        assert_eq!(at_end(&c, "led", 6 * H), (1, 0));
        assert!(c.keys().all(|(_, b)| *b == FROM_THE_START), "no change at all: {c:?}");
    }
}
