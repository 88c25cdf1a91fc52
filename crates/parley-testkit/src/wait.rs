//! Waiting on another process: its exit, its output lines, a file it writes.
//! Each wait blocks on the event itself (the exit, a line, the kernel's
//! report that a file changed) and is bounded by a deadline; none sleeps to
//! let something happen.

use notify::{RecursiveMode, Watcher};
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, ExitStatus};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Waits for `child` to end: a thread blocks in `wait()` (the exit itself is
/// the signal), this one waits on it with a deadline. Past the deadline the
/// child is killed, so the waiting thread ends too, and `None` is returned.
pub fn wait_child(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let pid = child.id();
    std::thread::scope(|scope| {
        let (tx, rx) = mpsc::channel();
        scope.spawn(move || {
            let _ = tx.send(child.wait());
        });
        match rx.recv_timeout(timeout) {
            Ok(status) => status.ok(),
            Err(_) => {
                let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
                None
            }
        }
    })
}

/// A thread that turns a pipe (a child's stdout or stderr) into a channel
/// of lines, so a reader can wait for the next one with a deadline. The
/// channel disconnects at EOF, which is also how a child's exit shows. The
/// thread reads whether or not anyone receives, so the child never blocks
/// on a full pipe.
pub fn lines_of<R: Read + Send + 'static>(pipe: R) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Waits until the file at `path` holds text satisfying `pred`, and returns
/// that text. For files another process writes on its own schedule (the
/// server's activity log, a stock client's output files): the file is read
/// again each time the kernel reports a change under `watch` (inotify,
/// through `notify`), which must be an existing directory above `path`;
/// directories created below it are watched as they appear. Panics with
/// `what` and the file's contents after `timeout`.
pub fn wait_for_file(watch: &Path, path: &Path, what: &str, pred: impl Fn(&str) -> bool, timeout: Duration) -> String {
    let (tx, rx) = mpsc::channel();
    let mut watcher = notify::recommended_watcher(move |event| {
        let _ = tx.send(event);
    })
    .expect("starting a file watcher");
    watcher.watch(watch, RecursiveMode::Recursive).unwrap_or_else(|e| panic!("watching {}: {e}", watch.display()));
    // Checked after the watch is in place, so a write in between is seen
    // either here or as an event.
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(text) = std::fs::read_to_string(path) {
            if pred(&text) {
                return text;
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(_) => continue,
            Err(_) => {
                let text = std::fs::read_to_string(path).unwrap_or_else(|e| format!("<{e}>"));
                if pred(&text) {
                    return text;
                }
                panic!("{what}: {} did not show it within {timeout:?}; it holds:\n{text}", path.display());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Stdio;

    #[test]
    fn a_file_written_later_in_a_new_directory_is_seen() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("sub").join("out");
        let writer_target = target.clone();
        let writer = std::thread::spawn(move || {
            std::fs::create_dir_all(writer_target.parent().unwrap()).unwrap();
            std::fs::write(&writer_target, "first\n").unwrap();
            std::fs::write(&writer_target, "first\nsecond\n").unwrap();
        });
        let text =
            wait_for_file(dir.path(), &target, "the second line", |t| t.contains("second"), Duration::from_secs(10));
        writer.join().unwrap();
        assert!(text.ends_with("second\n"));
    }

    #[test]
    #[should_panic(expected = "never: ")]
    fn a_file_that_never_matches_panics_at_the_deadline() {
        let dir = tempfile::tempdir().unwrap();
        wait_for_file(dir.path(), &dir.path().join("nothing"), "never", |_| false, Duration::from_millis(200));
    }

    #[test]
    fn wait_child_returns_the_exit_status() {
        let mut child = Command::new("sh").args(["-c", "exit 3"]).spawn().unwrap();
        let status = wait_child(&mut child, Duration::from_secs(10)).expect("sh exited");
        assert_eq!(status.code(), Some(3));
    }

    #[test]
    fn wait_child_kills_a_child_that_outlives_the_deadline() {
        let mut child = Command::new("sleep").arg("60").spawn().unwrap();
        assert!(wait_child(&mut child, Duration::from_millis(100)).is_none());
        // Killed: reaped at once rather than after a minute.
        assert!(wait_child(&mut child, Duration::from_secs(10)).is_some());
    }

    #[test]
    fn lines_of_a_pipe_arrive_in_order_and_the_channel_ends_at_eof() {
        let mut child = Command::new("sh").args(["-c", "echo one; echo two"]).stdout(Stdio::piped()).spawn().unwrap();
        let lines = lines_of(child.stdout.take().unwrap());
        let got: Vec<String> = lines.iter().collect();
        assert_eq!(got, ["one", "two"]);
        wait_child(&mut child, Duration::from_secs(10)).unwrap();
    }
}
