//! The window: the most recent changes of the feed, in order and without gaps, each held once.

use std::{collections::VecDeque, sync::Arc};

use verdict_domain::{Cursor, FeedChange, FeedFilter};

/// One change as the window holds it, shared (`Arc`) by every stream that sends it.
///
/// A struct rather than the bare change so that what streams can share grows here (the
/// converted, encoded message of each view) without reshaping the window or its walkers.
#[derive(Debug)]
pub(crate) struct HeldChange {
    pub(crate) change: FeedChange,
}

/// The changes in `(floor, head]`, all of them, oldest first, at most `capacity`.
///
/// Gapless because it is only ever filled from the database, strictly in order, starting from
/// its own head (never from bus hints): positions are handed out in commit order, so a read after
/// `head` can never be missing a change that commits later below what it returned.
#[derive(Debug)]
pub(crate) struct Window {
    floor: Cursor,
    head: Cursor,
    changes: VecDeque<Arc<HeldChange>>,
    capacity: usize,
}

/// Where a stream at some position stands against the window.
#[derive(Debug)]
pub(crate) enum Walk {
    /// The stream's position is older than the window: the changes in `(position, floor]` are
    /// only in the database.
    Behind { floor: Cursor },
    /// The changes in `(position, examined]` that match, in order. `examined` is the head unless
    /// the walk stopped at its maximum of matches.
    Walked {
        matches: Vec<Arc<HeldChange>>,
        examined: Cursor,
    },
    /// The stream's position is past the head: the window has not read that far yet (or the feed
    /// went backwards, see [`super::Progress::rewinds`]).
    Ahead,
}

impl Window {
    /// An empty window at the start of the feed holding at most `capacity` changes (at least 1).
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            floor: Cursor::START,
            head: Cursor::START,
            changes: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    /// The newest position the window covers.
    pub(crate) fn head(&self) -> Cursor {
        self.head
    }

    /// Forgets everything and covers nothing before `head`.
    pub(crate) fn reset(&mut self, head: Cursor) {
        self.changes.clear();
        self.floor = head;
        self.head = head;
    }

    /// Appends changes read from the database after [`Window::head`], oldest first, dropping the
    /// oldest held ones beyond the capacity; returns what was appended. A change not above the
    /// head is a store bug: it is refused rather than breaking the order (`None`; the changes
    /// before it stay appended).
    pub(crate) fn extend(&mut self, changes: Vec<FeedChange>) -> Option<Vec<Arc<HeldChange>>> {
        let mut appended = Vec::with_capacity(changes.len());
        for change in changes {
            if change.position <= self.head {
                return None;
            }
            self.head = change.position;
            let held = Arc::new(HeldChange { change });
            appended.push(Arc::clone(&held));
            self.changes.push_back(held);
            if self.changes.len() > self.capacity
                && let Some(evicted) = self.changes.pop_front()
            {
                self.floor = evicted.change.position;
            }
        }
        Some(appended)
    }

    /// The changes after `position` that `filter` wants, at most `max` of them.
    pub(crate) fn walk(&self, position: Cursor, filter: &FeedFilter, max: usize) -> Walk {
        if position < self.floor {
            return Walk::Behind { floor: self.floor };
        }
        if position > self.head {
            return Walk::Ahead;
        }
        let start = self
            .changes
            .partition_point(|held| held.change.position <= position);
        let mut matches = Vec::new();
        for held in self.changes.range(start..) {
            if filter.matches(&held.change.case) {
                matches.push(Arc::clone(held));
                if matches.len() == max.max(1) {
                    let examined = held.change.position;
                    return Walk::Walked { matches, examined };
                }
            }
        }
        Walk::Walked {
            matches,
            examined: self.head,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::change;
    use super::*;

    fn positions(walk: &Walk) -> (Vec<u64>, u64) {
        match walk {
            Walk::Walked { matches, examined } => (
                matches.iter().map(|h| h.change.position.0).collect(),
                examined.0,
            ),
            other => panic!("expected a walk, got {other:?}"),
        }
    }

    fn only(client_id: &str) -> FeedFilter {
        FeedFilter::new(vec![client_id.into()], vec![], vec![], false).unwrap()
    }

    #[test]
    fn a_walk_returns_what_matches_and_examines_up_to_the_head() {
        let mut window = Window::new(10);
        let appended = window.extend(
            (1..=6)
                .map(|p| change(p, if p % 2 == 0 { "even" } else { "odd" }))
                .collect(),
        );
        assert_eq!(appended.map(|a| a.len()), Some(6));
        assert_eq!(window.head(), Cursor(6));
        let walk = window.walk(Cursor(1), &only("odd"), 100);
        assert_eq!(positions(&walk), (vec![3, 5], 6));
        let walk = window.walk(Cursor::START, &FeedFilter::everything(), 100);
        assert_eq!(positions(&walk), ((1..=6).collect(), 6));
    }

    #[test]
    fn a_walk_that_matches_nothing_still_examines_everything() {
        let mut window = Window::new(10);
        window.extend((1..=4).map(|p| change(p, "a")).collect());
        assert_eq!(
            positions(&window.walk(Cursor(2), &only("b"), 100)),
            (vec![], 4)
        );
        assert_eq!(
            positions(&window.walk(Cursor(4), &only("a"), 100)),
            (vec![], 4)
        );
    }

    #[test]
    fn a_walk_stops_at_its_maximum_of_matches() {
        let mut window = Window::new(10);
        window.extend((1..=8).map(|p| change(p, "a")).collect());
        let walk = window.walk(Cursor(2), &FeedFilter::everything(), 3);
        assert_eq!(positions(&walk), (vec![3, 4, 5], 5));
    }

    #[test]
    fn the_oldest_changes_leave_a_full_window_and_raise_its_floor() {
        let mut window = Window::new(3);
        window.extend((1..=5).map(|p| change(p, "a")).collect());
        assert!(matches!(
            window.walk(Cursor(1), &FeedFilter::everything(), 100),
            Walk::Behind { floor: Cursor(2) }
        ));
        assert_eq!(
            positions(&window.walk(Cursor(2), &FeedFilter::everything(), 100)),
            (vec![3, 4, 5], 5)
        );
    }

    #[test]
    fn a_position_past_the_head_is_ahead() {
        let mut window = Window::new(3);
        window.extend(vec![change(1, "a")]);
        assert!(matches!(
            window.walk(Cursor(2), &FeedFilter::everything(), 100),
            Walk::Ahead
        ));
    }

    #[test]
    fn a_reset_window_covers_nothing_before_its_new_head() {
        let mut window = Window::new(3);
        window.extend(vec![change(1, "a"), change(2, "a")]);
        window.reset(Cursor(40));
        assert!(matches!(
            window.walk(Cursor(2), &FeedFilter::everything(), 100),
            Walk::Behind { floor: Cursor(40) }
        ));
        assert_eq!(
            positions(&window.walk(Cursor(40), &FeedFilter::everything(), 100)),
            (vec![], 40)
        );
        window.extend(vec![change(41, "a")]);
        assert_eq!(
            positions(&window.walk(Cursor(40), &FeedFilter::everything(), 100)),
            (vec![41], 41)
        );
    }

    #[test]
    fn changes_not_above_the_head_are_refused() {
        let mut window = Window::new(3);
        window.extend(vec![change(2, "a")]);
        assert!(window.extend(vec![change(2, "a")]).is_none());
        assert!(window.extend(vec![change(1, "a")]).is_none());
        assert_eq!(window.head(), Cursor(2));
        assert_eq!(
            positions(&window.walk(Cursor::START, &FeedFilter::everything(), 100)),
            (vec![2], 2)
        );
    }
}
