//! The memory budget (`max_memory`): what the open windows of every dataset hold, estimated
//! from their sketches (`DatasetProfile::memory_estimate`), plus the request bytes the queue
//! holds. The aggregator tells what its windows hold after every change; admission refuses new
//! data while the sum is at the limit, so the daemon sheds load instead of growing.

use std::sync::atomic::{AtomicUsize, Ordering};

/// The shared account of the budget.
#[derive(Debug)]
pub struct Memory {
    limit: usize,
    windows: AtomicUsize,
}

impl Memory {
    pub fn new(limit: usize) -> Memory {
        Memory {
            limit,
            windows: AtomicUsize::new(0),
        }
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Bytes the open windows hold, as the aggregator last told.
    pub fn windows(&self) -> usize {
        self.windows.load(Ordering::Relaxed)
    }

    pub fn set_windows(&self, bytes: usize) {
        self.windows.store(bytes, Ordering::Relaxed);
    }

    /// Whether windows and `queued` request bytes reach the limit together.
    pub fn full(&self, queued: usize) -> bool {
        self.windows().saturating_add(queued) >= self.limit
    }
}

#[cfg(test)]
mod tests {
    use super::Memory;

    #[test]
    fn full_at_the_limit_counting_windows_and_queue() {
        let m = Memory::new(1000);
        assert!(!m.full(999));
        assert!(m.full(1000));
        m.set_windows(600);
        assert!(!m.full(399));
        assert!(m.full(400));
        m.set_windows(usize::MAX);
        assert!(m.full(usize::MAX), "no overflow");
        m.set_windows(0);
        assert!(!m.full(0));
    }
}
