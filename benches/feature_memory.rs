//! What one feature's profile holds in memory, measured by a counting allocator, next to the
//! estimate the daemon's memory budget uses (`FeatureProfile::memory_estimate`).
//!
//! ```text
//! cargo bench --bench feature_memory
//! ```
//!
//! Each case profiles `FEATURES` features the way an open window of `driftd serve` does: every
//! feature is the merge of `BATCHES` batch profiles (one per request), and the bytes still
//! allocated afterwards are divided by the feature count. Printed per case: measured bytes per
//! feature, the estimate, and what a 100-feature and a 1,000-feature window cost.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use driftd::profile::{FeatureProfile, Value};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is forwarded to the system allocator unchanged; only a counter is added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, passed on as it is.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: `ptr` was allocated by `System` with this layout (see `alloc`).
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        // SAFETY: as for `alloc` and `dealloc`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const FEATURES: usize = 200;
const BATCHES: usize = 20;
const PER_BATCH: usize = 500;

/// The values of request `batch` for feature `feature` of one case.
fn value(case: &str, feature: usize, batch: usize, i: usize) -> Owned {
    let n = (batch * PER_BATCH + i) as u64;
    match case {
        // Every value new: ids, free text, URLs.
        "string, every value distinct" => Owned::Str(format!("user-{feature:04}-{n:012x}")),
        "string, 50 categories" => Owned::Str(format!("category-{}", n % 50)),
        "numeric, continuous" => Owned::Num((n as f64).sin() * 1e3 + feature as f64),
        "numeric, 10 levels" => Owned::Num((n % 10) as f64),
        _ => Owned::Bool(n.is_multiple_of(3)),
    }
}

enum Owned {
    Str(String),
    Num(f64),
    Bool(bool),
}

fn window(case: &str, feature: usize) -> FeatureProfile {
    let mut open = FeatureProfile::default();
    for batch in 0..BATCHES {
        let mut profile = FeatureProfile::default();
        for i in 0..PER_BATCH {
            match value(case, feature, batch, i) {
                Owned::Str(s) => profile.observe(Value::Str(&s)),
                Owned::Num(x) => profile.observe(Value::Number(x)),
                Owned::Bool(b) => profile.observe(Value::Bool(b)),
            }
        }
        open.merge(&profile).expect("same kind of profile");
    }
    open
}

fn main() {
    println!(
        "{FEATURES} features per case, each the merge of {BATCHES} batches of {PER_BATCH} values"
    );
    println!(
        "{:<32} {:>12} {:>12} {:>14} {:>15}",
        "case", "bytes/feat", "estimate", "100 features", "1,000 features"
    );
    for case in [
        "string, every value distinct",
        "string, 50 categories",
        "numeric, continuous",
        "numeric, 10 levels",
        "boolean",
    ] {
        let before = LIVE.load(Ordering::Relaxed);
        let windows: Vec<FeatureProfile> = (0..FEATURES).map(|f| window(case, f)).collect();
        let measured = (LIVE.load(Ordering::Relaxed) - before) as f64 / FEATURES as f64;
        let estimate = windows
            .iter()
            .map(FeatureProfile::memory_estimate)
            .sum::<usize>() as f64
            / FEATURES as f64;
        let mib = |n: f64| format!("{:.1} MiB", measured * n / (1 << 20) as f64);
        println!(
            "{case:<32} {measured:>12.0} {estimate:>12.0} {:>14} {:>15}",
            mib(100.0),
            mib(1000.0)
        );
        drop(windows);
    }
}
