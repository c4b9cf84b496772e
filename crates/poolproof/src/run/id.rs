//! Run ids: a UTC timestamp (sortable, readable) and a short random suffix (unique when two
//! runs start in the same second), e.g. `20261127T081502Z-3fa9c1`.

use rand::Rng;

/// A new run id.
pub fn new_run_id() -> String {
    let now = chrono::Utc::now();
    let suffix: u32 = rand::thread_rng().gen_range(0..0x0100_0000);
    format!("{}-{suffix:06x}", now.format("%Y%m%dT%H%M%SZ"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_timestamped_and_distinct() {
        let a = new_run_id();
        let b = new_run_id();
        assert_ne!(a, b);
        assert_eq!(a.len(), "20261127T081502Z-3fa9c1".len(), "{a}");
        assert!(
            a.as_bytes()[8] == b'T' && a.as_bytes()[15] == b'Z' && a.as_bytes()[16] == b'-',
            "{a}"
        );
        assert!(
            a.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'),
            "{a}"
        );
    }
}
