//! What the bench reads about its own process and machine: CPU time, peak memory, cores.
//!
//! Why `/proc` and not `getrusage`: the crate forbids `unsafe`, and Linux's `/proc` says the
//! same in text. Each reader returns `None` where the file is missing or unreadable (another
//! OS), and the bench prints "—" for it rather than a made-up number.

/// CPU time this process has used so far, in seconds: the on-CPU nanoseconds of every live
/// thread (`/proc/self/task/*/schedstat`, first field); where schedstat is missing, user +
/// system time from `/proc/self/stat` (in clock ticks of 1/100 s, Linux's `USER_HZ`).
pub(crate) fn cpu_secs() -> Option<f64> {
    schedstat_cpu_secs().or_else(stat_cpu_secs)
}

/// The sum of `/proc/self/task/*/schedstat`'s first field (nanoseconds on CPU).
fn schedstat_cpu_secs() -> Option<f64> {
    let tasks = std::fs::read_dir("/proc/self/task").ok()?;
    let mut nanos: u64 = 0;
    let mut threads = 0;
    for task in tasks.flatten() {
        let text = std::fs::read_to_string(task.path().join("schedstat")).ok()?;
        nanos = nanos.saturating_add(text.split_whitespace().next()?.parse().ok()?);
        threads += 1;
    }
    (threads > 0 && nanos > 0).then_some(nanos as f64 / 1e9)
}

/// Clock ticks per second in `/proc/self/stat` (`USER_HZ`, 100 on every Linux platform obsim
/// runs on).
const USER_HZ: f64 = 100.0;

/// utime + stime from `/proc/self/stat` (fields 14 and 15, counted after the command name in
/// parentheses, which may itself hold spaces).
fn stat_cpu_secs() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after_name = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // Field 3 (the state) is the first after the name: utime is field 14, stime field 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / USER_HZ)
}

/// This process's peak resident memory so far in MiB (`VmHWM` of `/proc/self/status`).
pub(crate) fn peak_mib() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/self/status").ok()?;
    status_kib(&text, "VmHWM:").map(|kib| kib as f64 / 1024.0)
}

/// The value in kB of `key` in `/proc/<pid>/status` text.
fn status_kib(text: &str, key: &str) -> Option<u64> {
    let line = text.lines().find(|line| line.starts_with(key))?;
    line[key.len()..].split_whitespace().next()?.parse().ok()
}

/// The machine's cores as the OS offers them to this process.
pub(crate) fn cores() -> u32 {
    std::thread::available_parallelism().map_or(1, |cores| cores.get() as u32)
}

/// The processor's model name (`/proc/cpuinfo`), for the report.
pub(crate) fn cpu_model() -> Option<String> {
    let text = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    let line = text.lines().find(|line| line.starts_with("model name"))?;
    Some(line.split_once(':')?.1.trim().to_string())
}

/// The repository's commit, if the bench runs inside a git checkout with `git` installed.
pub(crate) fn git_commit() -> Option<String> {
    let output = std::process::Command::new("git").args(["rev-parse", "--short=12", "HEAD"]).output().ok()?;
    let commit = String::from_utf8(output.stdout).ok()?.trim().to_string();
    (output.status.success() && !commit.is_empty()).then_some(commit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines_are_read_by_key() {
        let text = "Name:\tobsim\nVmPeak:\t  9000 kB\nVmHWM:\t    2048 kB\n";
        assert_eq!(status_kib(text, "VmHWM:"), Some(2048));
        assert_eq!(status_kib(text, "VmRSS:"), None);
    }

    #[test]
    fn this_process_has_used_cpu_and_memory() {
        // Burn a little CPU so that even a tick-resolution reader sees it.
        let mut sum = 0u64;
        for index in 0..20_000_000u64 {
            sum = std::hint::black_box(sum.wrapping_add(index * index));
        }
        assert!(sum > 0);
        if std::path::Path::new("/proc/self/status").exists() {
            assert!(cpu_secs().is_some_and(|secs| secs > 0.0));
            assert!(peak_mib().is_some_and(|mib| mib > 0.0));
        }
    }
}
