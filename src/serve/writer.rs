//! The writer id: which partial of every open window this process writes. Several processes
//! sharing one database each write their own partial, and reads merge them (see `store`).

use std::hash::{BuildHasher, Hasher};

/// The configured `writer_id`, or a random one (`w-` and 16 hex digits) for this run.
pub fn resolve(configured: Option<&str>) -> String {
    configured.map_or_else(random, str::to_owned)
}

/// 64 random bits: std's hasher keys are drawn from the system's randomness, mixed here with
/// the process id and the time.
fn random() -> String {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    format!("w-{:016x}", hasher.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_ids_are_kept_and_random_ones_differ() {
        assert_eq!(resolve(Some("pod-0")), "pod-0");
        let (a, b) = (resolve(None), resolve(None));
        assert_ne!(a, b);
        assert_eq!(a.len(), 18, "{a}");
        assert!(crate::config::ServeConfig::default().writer_id.is_none());
    }
}
