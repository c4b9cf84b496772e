//! Keeps a stopped app's log file to a bounded size: the first and the last part, whole lines,
//! with one line in between saying how much was dropped. With `LOG_REQUESTS=true` (the app's
//! default) a 30 s run at a few thousand requests per second writes 75–90 MB of JSON lines;
//! start-up and the end of the run are what a reader of a run directory needs.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;

/// Bytes kept from each end of an app log.
pub const KEEP_EACH_END: u64 = 8 * 1024 * 1024;

/// Trims `path` to its first and last `keep` bytes (cut at line boundaries) when it is larger
/// than twice that; returns the bytes dropped (0 when the file was left alone).
pub fn trim_middle(path: &Path, keep: u64) -> io::Result<u64> {
    let mut file = File::open(path)?;
    let len = file.metadata()?.len();
    if len <= keep.saturating_mul(2) {
        return Ok(0);
    }
    let mut head = vec![0; usize::try_from(keep).unwrap_or(usize::MAX)];
    file.read_exact(&mut head)?;
    // End the head after its last complete line, start the tail at its first complete one.
    head.truncate(head.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1));
    let mut tail = Vec::new();
    file.seek(SeekFrom::Start(len - keep))?;
    file.read_to_end(&mut tail)?;
    let tail_start = tail
        .iter()
        .position(|&b| b == b'\n')
        .map_or(tail.len(), |i| i + 1);
    let tail = &tail[tail_start..];
    let dropped = len - head.len() as u64 - tail.len() as u64;
    let tmp = path.with_extension("log.trimming");
    {
        let mut out = File::create(&tmp)?;
        out.write_all(&head)?;
        writeln!(
            out,
            "[poolproof: {dropped} bytes of this log dropped here; the first and last {} MiB are kept]",
            keep / (1024 * 1024)
        )?;
        out.write_all(tail)?;
    }
    std::fs::rename(&tmp, path)?;
    Ok(dropped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_log_keeps_whole_lines_from_both_ends_and_says_what_it_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app-1.log");
        let lines: Vec<String> = (0..10_000)
            .map(|i| format!("line {i:05} ........"))
            .collect();
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        let len = std::fs::metadata(&path).unwrap().len();

        let dropped = trim_middle(&path, 10_000).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let kept: Vec<&str> = text.lines().collect();
        assert_eq!(kept[0], "line 00000 ........");
        assert_eq!(*kept.last().unwrap(), "line 09999 ........");
        let marker = kept
            .iter()
            .position(|l| l.starts_with("[poolproof:"))
            .unwrap();
        assert!(
            kept[marker].contains(&format!("{dropped} bytes")),
            "{}",
            kept[marker]
        );
        // Every other line is a whole line of the original, in order, none twice.
        let rest: Vec<&str> = kept
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != marker)
            .map(|(_, l)| *l)
            .collect();
        assert!(rest.iter().all(|l| lines.iter().any(|o| o == l)));
        assert!(rest.windows(2).all(|w| w[0] < w[1]));
        let size = std::fs::metadata(&path).unwrap().len();
        assert!(size <= 20_000 + kept[marker].len() as u64 + 1, "{size}");
        assert_eq!(size, len - dropped + kept[marker].len() as u64 + 1);
    }

    #[test]
    fn a_small_log_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app-1.log");
        std::fs::write(&path, "one\ntwo\n").unwrap();
        assert_eq!(trim_middle(&path, 4).unwrap(), 0);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "one\ntwo\n");
    }
}
