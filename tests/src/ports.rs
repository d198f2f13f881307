//! Loopback ports for the processes tests start: one that was free, and
//! whether a given process is the one listening on it.

use std::net::TcpListener;

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

/// Whether process `pid` holds a TCP socket listening on `port` (Linux:
/// the socket inodes in `/proc/net/tcp{,6}` against the process's fds).
pub fn listens_on(pid: u32, port: u16) -> bool {
    let mut inodes = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let (Some(local), Some(state), Some(inode)) = (cols.get(1), cols.get(3), cols.get(9))
            else {
                continue;
            };
            let local_port = local
                .rsplit(':')
                .next()
                .and_then(|h| u16::from_str_radix(h, 16).ok());
            if *state == "0A" && local_port == Some(port) {
                inodes.push(format!("socket:[{inode}]"));
            }
        }
    }
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.flatten().any(|fd| {
        std::fs::read_link(fd.path())
            .is_ok_and(|link| inodes.iter().any(|i| link.as_os_str() == i.as_str()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Result;
    use std::process::Command;

    #[test]
    fn listens_on_names_the_process_that_holds_the_listener() -> Result<()> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        assert!(listens_on(std::process::id(), port));
        // Another process does not hold it, though a connection succeeds.
        let mut other = Command::new("sleep").arg("5").spawn()?;
        let reached = std::net::TcpStream::connect(("127.0.0.1", port)).is_ok();
        let held_by_other = listens_on(other.id(), port);
        other.kill()?;
        other.wait()?;
        assert!(reached);
        assert!(!held_by_other);
        // Once closed, nobody holds it.
        drop(listener);
        assert!(!listens_on(std::process::id(), port));
        Ok(())
    }
}
