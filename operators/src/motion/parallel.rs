//! Data parallelism on std threads whose results do not depend on the
//! number of threads: work is cut into bands that every thread count
//! computes with the same operations in the same order, so only the
//! scheduling changes.

use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// The machine's available parallelism (1 if unknown).
pub(crate) fn available_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// `0..len` cut into `parts` contiguous ranges whose lengths differ by at most one.
pub(crate) fn bands(len: usize, parts: usize) -> Vec<Range<usize>> {
    let parts = parts.clamp(1, len.max(1));
    (0..parts).map(|k| k * len / parts..(k + 1) * len / parts).collect()
}

/// Calls `fill(y, row)` for each `row_len`-long row of `data`, rows cut into
/// one band per thread.
pub(crate) fn for_each_row(threads: usize, data: &mut [f32], row_len: usize, fill: impl Fn(usize, &mut [f32]) + Sync) {
    for_each_band(threads, data, row_len, |rows, chunk| {
        for (y, row) in rows.zip(chunk.chunks_exact_mut(row_len)) {
            fill(y, row);
        }
    });
}

/// Calls `fill(rows, chunk)` for one band of `row_len`-long rows of `data` per thread.
pub(crate) fn for_each_band(
    threads: usize,
    data: &mut [f32],
    row_len: usize,
    fill: impl Fn(Range<usize>, &mut [f32]) + Sync,
) {
    let mut rest = data;
    let mut chunks = Vec::new();
    for band in bands(rest.len() / row_len, threads) {
        let (chunk, tail) = rest.split_at_mut(band.len() * row_len);
        chunks.push((band, chunk));
        rest = tail;
    }
    let mut chunks = chunks.into_iter();
    let own = chunks.next();
    std::thread::scope(|s| {
        for (rows, chunk) in chunks {
            let fill = &fill;
            s.spawn(move || fill(rows, chunk));
        }
        if let Some((rows, chunk)) = own {
            fill(rows, chunk);
        }
    });
}

/// Runs `work` on `threads` threads at once (the caller being member 0) and
/// returns their results in member order. Members meet at [`Member::sync`]
/// between phases that read what other members wrote.
pub(crate) fn team<T: Send>(threads: usize, work: impl Fn(&Member) -> T + Sync) -> Vec<T> {
    let barrier = Barrier {
        size: threads.max(1),
        arrived: AtomicUsize::new(0),
        round: AtomicUsize::new(0),
        broken: AtomicBool::new(false),
    };
    let run = |index: usize| {
        let member = Member { index, barrier: &barrier };
        // A member that panics would leave the others waiting for ever.
        let _alarm = PanicAlarm(&barrier.broken);
        work(&member)
    };
    if barrier.size == 1 {
        return vec![run(0)];
    }
    std::thread::scope(|s| {
        let others: Vec<_> = (1..barrier.size).map(|index| s.spawn(move || run(index))).collect();
        let first = run(0);
        std::iter::once(first).chain(others.into_iter().map(|h| h.join().expect("team member panicked"))).collect()
    })
}

/// One thread of a [`team`].
#[derive(Debug)]
pub(crate) struct Member<'a> {
    pub index: usize,
    barrier: &'a Barrier,
}

impl Member<'_> {
    pub fn team_size(&self) -> usize {
        self.barrier.size
    }

    /// This member's share of `0..len`.
    pub fn share(&self, len: usize) -> Range<usize> {
        let parts = self.team_size();
        self.index * len / parts..(self.index + 1) * len / parts
    }

    /// Waits until every member has called `sync` as often as this one.
    pub fn sync(&self) {
        self.barrier.wait();
    }
}

/// A barrier that spins before it yields: the phases it separates last tens
/// of microseconds, less than a sleeping thread takes to wake up.
///
/// The spin is kept to a few microseconds so that a member waiting for a
/// descheduled one (more threads than free cores) soon gives its core away.
#[derive(Debug)]
struct Barrier {
    size: usize,
    arrived: AtomicUsize,
    round: AtomicUsize,
    broken: AtomicBool,
}

/// About 5–10 µs of spinning.
const SPINS_BEFORE_YIELDING: u32 = 500;

impl Barrier {
    fn wait(&self) {
        if self.size == 1 {
            return;
        }
        let round = self.round.load(Ordering::Acquire);
        if self.arrived.fetch_add(1, Ordering::AcqRel) + 1 == self.size {
            self.arrived.store(0, Ordering::Relaxed);
            self.round.fetch_add(1, Ordering::Release);
            return;
        }
        let mut spins = 0u32;
        while self.round.load(Ordering::Acquire) == round {
            assert!(!self.broken.load(Ordering::Relaxed), "another team member panicked");
            if spins < SPINS_BEFORE_YIELDING {
                std::hint::spin_loop();
                spins += 1;
            } else {
                std::thread::yield_now();
            }
        }
    }
}

struct PanicAlarm<'a>(&'a AtomicBool);

impl Drop for PanicAlarm<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.store(true, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bands_partition_the_range() {
        assert_eq!(bands(10, 3), vec![0..3, 3..6, 6..10]);
        assert_eq!(bands(2, 4), vec![0..1, 1..2]);
        assert_eq!(bands(0, 2), vec![0..0]);
    }

    #[test]
    fn team_members_meet_between_phases() {
        let cells: Vec<_> = (0..4).map(|_| AtomicUsize::new(0)).collect();
        let sums = team(4, |m| {
            cells[m.index].store(m.index + 1, Ordering::Relaxed);
            m.sync();
            cells.iter().map(|c| c.load(Ordering::Relaxed)).sum::<usize>()
        });
        assert_eq!(sums, vec![10; 4]);
        let mut rows = vec![0f32; 12];
        for_each_row(2, &mut rows, 3, |y, row| row.fill(y as f32));
        assert_eq!(rows, [0., 0., 0., 1., 1., 1., 2., 2., 2., 3., 3., 3.]);
    }
}
