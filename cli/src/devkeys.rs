//! Development defaults for secrets, so `wikiedge up` runs out of the box.
//!
//! When the manifest declares `jwt_private_key` / `jwt_public_key` and no
//! value is configured, a fresh Ed25519 key pair is generated once into
//! `<state-dir>/dev-keys.json` and reused on later starts; the same for
//! `admin_api_key` (a random 256-bit key). The host says so on stderr and
//! names the file, never the secret. Production deployments set these
//! variables (`SPIN_VARIABLE_*` or Spin's variable providers) instead.

use anyhow::{Context, Result};
use base64::Engine as _;
use std::collections::BTreeMap;
use std::path::Path;
use wikiedge_host::manifest::Manifest;

/// Values to use for otherwise unset variables.
pub fn dev_defaults(
    manifest: &Manifest,
    state_dir: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<BTreeMap<String, String>> {
    let declared = |n: &str| manifest.variables.contains_key(n);
    let unset = |n: &str| {
        declared(n) && env(&format!("SPIN_VARIABLE_{}", n.to_ascii_uppercase())).is_none()
    };
    let wants_keys = unset("jwt_private_key") && unset("jwt_public_key");
    let wants_admin = unset("admin_api_key");
    let mut out = BTreeMap::new();
    if !wants_keys && !wants_admin {
        return Ok(out);
    }
    let path = state_dir.join("dev-keys.json");
    let mut stored: BTreeMap<String, String> = match std::fs::read(&path) {
        Ok(bytes) => {
            serde_json::from_slice(&bytes).with_context(|| format!("corrupt {}", path.display()))?
        }
        Err(_) => BTreeMap::new(),
    };
    let mut changed = false;
    if wants_keys && !stored.contains_key("jwt_private_key") {
        let seed: [u8; 32] = rand::random();
        let key = wikiedge_core::auth::signing::generate(seed);
        let b64 = base64::engine::general_purpose::STANDARD;
        stored.insert("jwt_private_key".into(), b64.encode(seed));
        stored.insert(
            "jwt_public_key".into(),
            wikiedge_core::auth::signing::public_key_b64(&key.verifying_key()),
        );
        changed = true;
    }
    if wants_admin && !stored.contains_key("admin_api_key") {
        let raw: [u8; 32] = rand::random();
        stored.insert(
            "admin_api_key".into(),
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw),
        );
        changed = true;
    }
    if changed {
        std::fs::create_dir_all(state_dir)?;
        let tmp = path.with_extension(format!("json.tmp-{}", std::process::id()));
        // A leftover from a crashed run of this same process id is ours.
        let _ = std::fs::remove_file(&tmp);
        write_private(&tmp, &serde_json::to_vec_pretty(&stored)?)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        std::fs::rename(&tmp, &path)?;
    }
    if wants_keys {
        tracing::warn!(
            "Using a development token signing key from {} (set SPIN_VARIABLE_JWT_PRIVATE_KEY and SPIN_VARIABLE_JWT_PUBLIC_KEY in production)",
            path.display()
        );
        for k in ["jwt_private_key", "jwt_public_key"] {
            if let Some(v) = stored.get(k) {
                out.insert(k.to_string(), v.clone());
            }
        }
    }
    if wants_admin {
        tracing::warn!(
            "Using a development admin API key from {} (key \"admin_api_key\"; set SPIN_VARIABLE_ADMIN_API_KEY in production)",
            path.display()
        );
        if let Some(v) = stored.get("admin_api_key") {
            out.insert("admin_api_key".into(), v.clone());
        }
    }
    Ok(out)
}

/// Writes a new file readable by its owner only: created with mode 0600
/// and `create_new` (never through an existing file or symlink), so the
/// secret is never readable by others, not even between write and chmod.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_files_are_created_owner_only_and_never_through_an_existing_path() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("secret");
        write_private(&path, b"s3cret").expect("written");
        assert_eq!(std::fs::read(&path).expect("read"), b"s3cret");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let err = write_private(&path, b"again").expect_err("exists");
        assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists);
    }
}
