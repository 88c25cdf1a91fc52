//! CPU time and resident memory of a process, from /proc. Used for the
//! server under test (its PID is given on the command line) and for the
//! load generator itself, so every report can say who used the cores.

/// User plus system CPU seconds of `pid` (all threads).
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces; fields start after the last ')'.
    let rest = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    // utime and stime are fields 14 and 15 of the whole line, so 11 and 12
    // counting from the state field (field 3).
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / ticks_per_second())
}

/// On-CPU time of `pid`'s live threads in seconds, to the nanosecond, from
/// the scheduler's own accounting (`/proc/PID/task/*/schedstat`). For short
/// slices, where the tick-based `cpu_seconds` (10 ms) is too coarse; over
/// long ones `cpu_seconds` is right, as it keeps the time of threads that
/// have ended.
pub fn cpu_seconds_precise(pid: u32) -> Option<f64> {
    let mut ns: u64 = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let Ok(text) = std::fs::read_to_string(task.ok()?.path().join("schedstat")) else {
            continue; // the thread ended meanwhile
        };
        ns += text.split(' ').next()?.parse::<u64>().ok()?;
    }
    Some(ns as f64 / 1e9)
}

fn ticks_per_second() -> f64 {
    crate::sys::clock_ticks_per_second().map_or(100.0, |t| t as f64)
}

/// Resident set size of `pid` in bytes.
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = text.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// CPU seconds of this process.
pub fn own_cpu_seconds() -> f64 {
    cpu_seconds(std::process::id()).unwrap_or(0.0)
}

/// A before/after pair of CPU readings for the server and the tool.
#[derive(Clone, Copy)]
pub struct CpuMark {
    pub server: Option<f64>,
    pub tool: f64,
}

impl CpuMark {
    pub fn now(server_pid: Option<u32>) -> CpuMark {
        CpuMark { server: server_pid.and_then(cpu_seconds), tool: own_cpu_seconds() }
    }

    /// The same from `cpu_seconds_precise`, for slices of milliseconds.
    pub fn precise(server_pid: Option<u32>) -> CpuMark {
        let tool = cpu_seconds_precise(std::process::id()).unwrap_or(0.0);
        CpuMark { server: server_pid.and_then(cpu_seconds_precise), tool }
    }

    /// (server, tool) CPU seconds used since `earlier`.
    pub fn since(&self, earlier: &CpuMark) -> (Option<f64>, f64) {
        let server = match (self.server, earlier.server) {
            (Some(a), Some(b)) => Some(a - b),
            _ => None,
        };
        (server, self.tool - earlier.tool)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_has_cpu_and_memory() {
        let me = std::process::id();
        assert!(cpu_seconds(me).is_some());
        assert!(cpu_seconds_precise(me).unwrap() > 0.0);
        assert!(rss_bytes(me).unwrap() > 0);
    }
}
