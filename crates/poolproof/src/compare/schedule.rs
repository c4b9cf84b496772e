//! The order in which a run measures its arms and replicates: interleaved replicate by
//! replicate, so slow drift of the host (thermal, cache, neighbours) hits every arm alike,
//! with the arm order rotated each replicate so no arm always runs first (or last).

/// One measured load phase: an arm (None for single-arm scenarios) and its replicate number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub arm: Option<String>,
    /// 1-based.
    pub replicate: u32,
}

/// The steps of a run: replicate 1 of every arm, then replicate 2 of every arm (arm order
/// rotated by one), and so on. `arms` empty means a single-arm scenario.
pub fn replicate_schedule(arms: &[String], replicates: u32) -> Vec<Step> {
    let mut out = Vec::new();
    for r in 1..=replicates.max(1) {
        if arms.is_empty() {
            out.push(Step {
                arm: None,
                replicate: r,
            });
            continue;
        }
        let shift = (r as usize - 1) % arms.len();
        for k in 0..arms.len() {
            out.push(Step {
                arm: Some(arms[(k + shift) % arms.len()].clone()),
                replicate: r,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(steps: &[Step]) -> Vec<String> {
        steps
            .iter()
            .map(|s| format!("{}{}", s.arm.as_deref().unwrap_or("-"), s.replicate))
            .collect()
    }

    #[test]
    fn arms_interleave_and_rotate() {
        let arms = vec!["a".to_string(), "b".to_string(), "c".to_string()];
        let s = replicate_schedule(&arms, 4);
        assert_eq!(
            names(&s),
            ["a1", "b1", "c1", "b2", "c2", "a2", "c3", "a3", "b3", "a4", "b4", "c4"]
        );
    }

    #[test]
    fn single_arm_is_one_step_per_replicate() {
        assert_eq!(names(&replicate_schedule(&[], 3)), ["-1", "-2", "-3"]);
        assert_eq!(names(&replicate_schedule(&[], 0)), ["-1"]);
    }
}
