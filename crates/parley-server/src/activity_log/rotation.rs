//! When the activity log moves aside for a new file, and how: by size or
//! age (`[log] rotate_bytes`, `rotate_age_secs`), keeping `keep` old files
//! as `server_log.txt.1` (newest) to `.N`. The writer rotates between two
//! writes of whole lines, so no line is lost or split; after `SIGHUP` it
//! reopens the file by name, for rotation done by an outside tool.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// The rotation policy; all zero turns rotation off.
#[derive(Debug, Clone, Copy, Default)]
pub struct Rotation {
    /// Rotate once the file holds this many bytes (0: never by size).
    pub max_bytes: u64,
    /// Rotate once the file is this old (None: never by age).
    pub max_age: Option<Duration>,
    /// Old files kept; older ones are deleted.
    pub keep: usize,
}

impl Rotation {
    /// Whether a file of `written` bytes opened at `opened` is due.
    pub fn due(&self, written: u64, opened: SystemTime, now: SystemTime) -> bool {
        let by_size = self.max_bytes > 0 && written >= self.max_bytes;
        let by_age = self.max_age.is_some_and(|age| now.duration_since(opened).unwrap_or_default() >= age);
        (by_size || by_age) && written > 0
    }
}

/// `path.N`.
pub fn numbered(path: &Path, n: usize) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

/// Moves `path` to `path.1`, `path.1` to `path.2`, ... keeping `keep` old
/// files (with `keep` 0 the log is simply started again).
pub fn shift(path: &Path, keep: usize) -> io::Result<()> {
    if keep == 0 {
        return fs::remove_file(path).or_else(|e| if e.kind() == io::ErrorKind::NotFound { Ok(()) } else { Err(e) });
    }
    let gone = |r: io::Result<()>| match r {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    };
    gone(fs::remove_file(numbered(path, keep)))?;
    for n in (1..keep).rev() {
        gone(fs::rename(numbered(path, n), numbered(path, n + 1)))?;
    }
    fs::rename(path, numbered(path, 1))
}

/// Opens `path` for appending, creating it.
pub fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_files_shift_and_the_oldest_goes() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log.txt");
        for round in 0..4 {
            fs::write(&log, format!("round {round}\n")).unwrap();
            shift(&log, 2).unwrap();
        }
        assert!(!log.exists());
        assert_eq!(fs::read_to_string(numbered(&log, 1)).unwrap(), "round 3\n");
        assert_eq!(fs::read_to_string(numbered(&log, 2)).unwrap(), "round 2\n");
        assert!(!numbered(&log, 3).exists());
    }

    #[test]
    fn size_and_age_make_a_file_due() {
        let now = SystemTime::now();
        let r = Rotation { max_bytes: 100, max_age: Some(Duration::from_secs(60)), keep: 3 };
        assert!(!r.due(99, now, now));
        assert!(r.due(100, now, now));
        assert!(r.due(1, now - Duration::from_secs(61), now));
        assert!(!r.due(0, now - Duration::from_secs(61), now), "an empty file stays");
        assert!(!Rotation::default().due(u64::MAX, now - Duration::from_secs(1 << 30), now));
    }
}
