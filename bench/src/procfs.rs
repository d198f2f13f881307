//! Reading a process's memory figures from `/proc/PID/status` and its CPU
//! time from `/proc/PID/stat` (Linux), and what children wrote to storage.

use std::time::Duration;

/// The unit of `/proc/PID/stat`'s CPU times: `USER_HZ`, 100 per second in
/// Linux's user-space ABI whatever the kernel's own tick rate.
const USER_HZ: u64 = 100;

/// A `Field:   N kB` line of process `pid`'s `/proc/PID/status`, in KiB
/// (`VmHWM` is the peak RSS, `VmRSS` the current one). `None` when the
/// process or the field is gone.
pub fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_status_kib(&status, field)
}

/// [`status_kib`] from the text of a status file.
pub fn parse_status_kib(status: &str, field: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// The CPU time process `pid` has used so far, all its threads, user and
/// system (10 ms resolution). `None` when the process is gone.
pub fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let ticks = parse_stat_cpu_ticks(&stat)?;
    Some(Duration::from_millis(ticks * 1000 / USER_HZ))
}

/// The CPU time process `pid` and its descendants alive now have used so
/// far (each as [`cpu_time`]): a server that works in child processes,
/// like nginx's workers, is measured whole. A child that has exited is
/// counted in its parent only once reaped (`cutime`, not read here), so
/// this is for servers whose children live through the measurement.
/// `None` when `pid` is gone.
pub fn tree_cpu_time(pid: u32) -> Option<Duration> {
    let mut total = cpu_time(pid)?;
    let mut todo = children(pid);
    // Bounded: a process tree is finite, but /proc is read while it changes.
    let mut seen = 0;
    while let Some(child) = todo.pop() {
        seen += 1;
        if seen > 4096 {
            break;
        }
        if let Some(t) = cpu_time(child) {
            total += t;
        }
        todo.extend(children(child));
    }
    Some(total)
}

/// The children of every thread of process `pid`
/// (`/proc/PID/task/TID/children`); none if unreadable.
fn children(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("children")).ok())
        .flat_map(|list| {
            list.split_whitespace()
                .filter_map(|c| c.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}

/// The calling thread's own CPU clock (`CLOCK_THREAD_CPUTIME_ID`: user and
/// system time of this thread alone, in nanoseconds). `None` if the clock
/// cannot be read.
#[allow(unsafe_code)] // one libc call writing into a local timespec
pub fn thread_cpu_now() -> Option<Duration> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `clock_gettime` writes one `timespec` through the pointer,
    // which points at a live local of that type.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return None;
    }
    Some(Duration::new(
        u64::try_from(ts.tv_sec).ok()?,
        u32::try_from(ts.tv_nsec).ok()?,
    ))
}

/// The bytes that the calling process's waited-for children caused to be
/// written to storage, all of them together (`getrusage(RUSAGE_CHILDREN)`'s
/// `ru_oublock`, 512-byte blocks: Linux counts a page when a write makes
/// it dirty, so a page written twice before it reaches the disk counts
/// once, and a file's pages dropped before writeback still count). The
/// difference across one child's life is that child's, if no other child
/// is reaped meanwhile. `None` if it cannot be read.
#[allow(unsafe_code)] // one libc call writing into a local rusage
pub fn children_bytes_written() -> Option<u64> {
    // SAFETY: an all-zero `rusage` is a valid value of that plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `getrusage` writes one `rusage` through the pointer, which
    // points at a live local of that type.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) };
    if rc != 0 {
        return None;
    }
    u64::try_from(usage.ru_oublock)
        .ok()
        .map(|blocks| blocks * 512)
}

/// `utime + stime` (fields 14 and 15) of a `/proc/PID/stat` line, in
/// `USER_HZ` ticks. The command name (field 2) is in parentheses and may
/// hold spaces and parentheses itself, so fields are counted from the last
/// `)`.
pub fn parse_stat_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    // After the name: field 3 (state) is the first, so 14 and 15 are the
    // 12th and 13th.
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// Which processor the run was on, for telling machines of one kind apart
/// in the record: the same code has run at twice the CPU per request on
/// one 2-core VM as on another, with the static servers unchanged. The
/// model name with its family and model numbers (`/proc/cpuinfo`'s first
/// processor), then the sizes of the level-2 and level-3 caches as sysfs
/// gives them for CPU 0. Empty when none of it can be read.
pub fn cpu_description() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cache = |level: u8| {
        (0..8).find_map(|index| {
            let dir = format!("/sys/devices/system/cpu/cpu0/cache/index{index}");
            let read = |f: &str| std::fs::read_to_string(format!("{dir}/{f}")).ok();
            let found = read("level")?.trim().parse::<u8>().ok()? == level
                && read("type")?.trim() != "Instruction";
            if !found {
                return None;
            }
            read("size").map(|size| size.trim().to_string())
        })
    };
    describe_cpu(&cpuinfo, cache(2).as_deref(), cache(3).as_deref())
}

/// [`cpu_description`] from the text of `/proc/cpuinfo` and the two cache
/// sizes.
pub fn describe_cpu(cpuinfo: &str, l2: Option<&str>, l3: Option<&str>) -> String {
    let first = cpuinfo.split("\n\n").next().unwrap_or_default();
    let field = |name: &str| {
        first.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            (key.trim() == name).then(|| value.trim().to_string())
        })
    };
    let mut parts = Vec::new();
    if let Some(model) = field("model name") {
        match (field("cpu family"), field("model")) {
            (Some(family), Some(number)) => {
                parts.push(format!("{model} (family {family}, model {number})"))
            }
            _ => parts.push(model),
        }
    }
    if let Some(l2) = l2 {
        parts.push(format!("L2 {l2} per core"));
    }
    if let Some(l3) = l3 {
        parts.push(format!("L3 {l3}"));
    }
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_the_first_processor_and_its_caches() {
        let cpuinfo = "processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 26\nmodel\t\t: 2\n\
                       model name\t: AMD EPYC\ncache size\t: 1024 KB\n\n\
                       processor\t: 1\ncpu family\t: 25\nmodel\t\t: 1\nmodel name\t: Other\n";
        assert_eq!(
            describe_cpu(cpuinfo, Some("1024K"), Some("32768K")),
            "AMD EPYC (family 26, model 2), L2 1024K per core, L3 32768K"
        );
        // No family or model number, no caches.
        assert_eq!(
            describe_cpu("model name\t: Some CPU\n", None, None),
            "Some CPU"
        );
        assert_eq!(describe_cpu("", None, Some("8M")), "L3 8M");
        assert_eq!(describe_cpu("", None, None), "");
        // This machine's own, read for real: a Linux host names its processor.
        assert!(!cpu_description().is_empty());
    }

    #[test]
    fn a_child_that_writes_a_file_is_counted_once_reaped() {
        // On the disk the build is on (not a tmpfs, whose pages are never
        // written back and are not counted).
        let target = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target");
        let dir = tempfile::tempdir_in(&target).expect("a scratch directory under target/");
        let file = dir.path().join("written");
        let before = children_bytes_written().expect("rusage");
        let status = std::process::Command::new("sh")
            .arg("-c")
            .arg("head -c 8388608 /dev/zero > \"$1\"")
            .arg("sh")
            .arg(&file)
            .status()
            .expect("sh");
        assert!(status.success());
        let after = children_bytes_written().expect("rusage");
        assert_eq!(
            std::fs::metadata(&file).map(|m| m.len()).ok(),
            Some(8 << 20)
        );
        let written = after - before;
        // The file's 8 MiB, and not much more (no other child ran).
        assert!(
            (8 << 20..9 << 20).contains(&written),
            "{written} bytes counted for an 8 MiB file"
        );
    }

    #[test]
    fn reads_a_field_in_kib() {
        let status = "Name:\twikiedge\nVmPeak:\t  900 kB\nVmHWM:\t   12345 kB\nVmRSS:\t 2000 kB\n";
        assert_eq!(parse_status_kib(status, "VmHWM"), Some(12345));
        assert_eq!(parse_status_kib(status, "VmRSS"), Some(2000));
        assert_eq!(parse_status_kib(status, "VmSwap"), None);
        // Our own process has a peak RSS.
        assert!(status_kib(std::process::id(), "VmHWM").is_some_and(|k| k > 0));
    }

    #[test]
    fn reads_user_and_system_ticks_after_an_awkward_name() {
        // Fields 14 (utime) and 15 (stime) are 250 and 17; the name holds a
        // space and a parenthesis.
        let stat =
            "4242 (up (2) x) S 1 4242 4242 0 -1 4194560 5000 0 0 0 250 17 0 0 20 0 9 0 100 1 1";
        assert_eq!(parse_stat_cpu_ticks(stat), Some(267));
        assert_eq!(parse_stat_cpu_ticks("4242 (x) S 1 2"), None);
        assert_eq!(parse_stat_cpu_ticks("garbage"), None);
    }

    #[test]
    fn our_own_cpu_time_grows_while_we_work() {
        let pid = std::process::id();
        let before = cpu_time(pid).expect("our own stat");
        let started = std::time::Instant::now();
        let mut x = 0u64;
        // Work until the reading moves (one 10 ms tick); a reading that
        // never moves fails after 5 s of work.
        while cpu_time(pid).expect("our own stat") == before {
            for i in 0..100_000u64 {
                x = x.wrapping_mul(31).wrapping_add(i);
            }
            std::hint::black_box(x);
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "CPU time never moved"
            );
        }
        assert!(cpu_time(pid).expect("our own stat") > before);
    }

    #[test]
    fn a_process_trees_cpu_time_counts_its_live_children() {
        // A child shell busy-loops until it has used 300 ms of CPU.
        let mut child = std::process::Command::new("sh")
            .args(["-c", "while :; do :; done"])
            .spawn()
            .expect("sh");
        let started = std::time::Instant::now();
        let burnt = loop {
            let c = cpu_time(child.id()).expect("the child's stat");
            if c >= Duration::from_millis(300) {
                break c;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "the child never ran"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        let me = std::process::id();
        let tree = tree_cpu_time(me).expect("our own tree");
        let alone = cpu_time(me).expect("our own stat");
        let _ = child.kill();
        let _ = child.wait();
        // The tree holds the child's time (which only grew since it was
        // read); our own may have grown by a tick or two between readings.
        assert!(
            tree + Duration::from_millis(50) >= alone + burnt,
            "tree {tree:?}, alone {alone:?}, child {burnt:?}"
        );
        // A process that is gone has no tree.
        assert_eq!(tree_cpu_time(child.id()), None);
    }

    #[test]
    fn a_threads_clock_counts_its_own_work_only() {
        // A spawned thread works for 30 ms of wall time while this one
        // sleeps: its clock moves, this thread's hardly does (a process
        // clock would have moved by the other thread's work).
        let mine = thread_cpu_now().expect("this thread's clock");
        let worked = std::thread::spawn(|| {
            let before = thread_cpu_now().expect("the thread's clock");
            let started = std::time::Instant::now();
            let mut x = 0u64;
            while started.elapsed() < Duration::from_millis(30) {
                for i in 0..10_000u64 {
                    x = x.wrapping_mul(31).wrapping_add(i);
                }
                std::hint::black_box(x);
            }
            let after = thread_cpu_now().expect("the thread's clock");
            (after - before, started.elapsed())
        });
        std::thread::sleep(Duration::from_millis(60));
        let slept = thread_cpu_now().expect("this thread's clock") - mine;
        let (worked, wall) = worked.join().expect("the thread");
        assert!(
            worked > Duration::ZERO && worked <= wall,
            "{worked:?} of {wall:?}"
        );
        assert!(slept < Duration::from_millis(10), "{slept:?}");
        assert!(worked > slept, "{worked:?} {slept:?}");
    }
}
