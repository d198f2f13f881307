//! nginx as a second baseline, where it is installed: the static server
//! issue #18 names, serving the same bytes as the scenario it is compared
//! with, from a file (`sendfile`), in its usual shape (a master process and
//! one worker per core, access log off).
//!
//! Every request gets the one file, whatever its path, with the same
//! content type and headers as the response it copies (as [`crate::baseline`]
//! does), so a load run sends exactly what it sends to wikiedge.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use http::HeaderMap;
use tokio::process::Command;

use crate::baseline::is_framing_header;

/// The nginx binary: `explicit` if given, else `nginx` on `PATH` or in
/// `/usr/sbin` (where Debian puts it, often not on a user's `PATH`).
pub fn nginx_bin(explicit: Option<&Path>) -> Option<PathBuf> {
    if let Some(p) = explicit {
        return p.is_file().then(|| p.to_path_buf());
    }
    crate::proc::find_on_path("nginx").or_else(|| {
        let sbin = PathBuf::from("/usr/sbin/nginx");
        sbin.is_file().then_some(sbin)
    })
}

/// Whether this process runs as root (`/proc/self/status`, effective uid).
fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let uids = s.lines().find(|l| l.starts_with("Uid:"))?.to_string();
            uids.split_whitespace().nth(2).map(|euid| euid == "0")
        })
        .unwrap_or(false)
}

/// A value in single quotes for nginx's configuration: backslashes and
/// single quotes escaped. `None` for a value with `$`, which nginx would
/// read as a variable and has no escape for.
fn quoted(value: &str) -> Option<String> {
    if value.contains('$') || value.chars().any(char::is_control) {
        return None;
    }
    Some(format!(
        "'{}'",
        value.replace('\\', "\\\\").replace('\'', "\\'")
    ))
}

/// The configuration: listen on `127.0.0.1:port`, answer every request
/// with `{prefix}/www/body` as `content_type` plus `headers` (framing
/// headers and any nginx cannot quote are left out, as the native baseline
/// leaves out framing headers). Everything nginx writes stays in `prefix`.
pub fn config(prefix: &Path, port: u16, content_type: &str, headers: &HeaderMap) -> Result<String> {
    let p = prefix.display();
    let content_type = quoted(content_type).context("content type nginx cannot quote")?;
    let mut add = String::new();
    for (name, value) in headers {
        if is_framing_header(name.as_str()) || name == http::header::CONTENT_TYPE {
            continue;
        }
        if let Some(v) = value.to_str().ok().and_then(quoted) {
            add.push_str(&format!("            add_header {name} {v} always;\n"));
        }
    }
    // As root, nginx's workers would become `nobody`, who cannot read a
    // private scratch directory.
    let user = if running_as_root() {
        "user root;\n"
    } else {
        ""
    };
    Ok(format!(
        "{user}daemon off;
master_process on;
worker_processes auto;
pid {p}/nginx.pid;
error_log {p}/error.log warn;
events {{
    worker_connections 4096;
}}
http {{
    access_log off;
    server_tokens off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_requests 100000000;
    keepalive_timeout 75s;
    etag off;
    types {{ }}
    client_body_temp_path {p}/tmp/body;
    proxy_temp_path {p}/tmp/proxy;
    fastcgi_temp_path {p}/tmp/fastcgi;
    uwsgi_temp_path {p}/tmp/uwsgi;
    scgi_temp_path {p}/tmp/scgi;
    server {{
        listen 127.0.0.1:{port};
        root {p}/www;
        location / {{
            default_type {content_type};
{add}            try_files /body =500;
        }}
    }}
}}
"
    ))
}

/// Writes the body and the configuration under `prefix` and returns the
/// command that starts nginx on them (in the foreground).
pub fn prepare(
    bin: &Path,
    prefix: &Path,
    port: u16,
    content_type: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Command> {
    if !prefix.is_absolute() {
        bail!("nginx's prefix must be absolute: {}", prefix.display());
    }
    std::fs::create_dir_all(prefix.join("www"))?;
    std::fs::create_dir_all(prefix.join("tmp"))?;
    std::fs::write(prefix.join("www/body"), body)?;
    let conf = prefix.join("nginx.conf");
    std::fs::write(&conf, config(prefix, port, content_type, headers)?)?;
    let mut cmd = Command::new(bin);
    cmd.arg("-p")
        .arg(prefix)
        .arg("-c")
        .arg(&conf)
        .arg("-e")
        .arg(prefix.join("error.log"));
    Ok(cmd)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn headers_are_copied_quoted_and_framing_left_out() -> Result<()> {
        let mut h = HeaderMap::new();
        h.insert("etag", HeaderValue::from_static("\"123-abc\""));
        h.insert("x-odd", HeaderValue::from_static("it's \\ here"));
        h.insert("x-var", HeaderValue::from_static("$host"));
        h.insert("content-length", HeaderValue::from_static("5"));
        h.insert("content-type", HeaderValue::from_static("text/plain"));
        let c = config(Path::new("/x"), 8123, "application/json", &h)?;
        assert!(c.contains("listen 127.0.0.1:8123;"), "{c}");
        assert!(c.contains("default_type 'application/json';"), "{c}");
        assert!(c.contains("add_header etag '\"123-abc\"' always;"), "{c}");
        assert!(
            c.contains(r"add_header x-odd 'it\'s \\ here' always;"),
            "{c}"
        );
        assert!(!c.contains("x-var"), "{c}");
        assert!(!c.contains("content-length"), "{c}");
        assert!(!c.contains("text/plain"), "{c}");
        Ok(())
    }
}
