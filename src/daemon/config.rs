//! The daemon's configuration file and default folders.
//!
//! The file (`--config FILE`) is a JSON object whose keys are the command line's long
//! options: `{"download-dir": "/srv/dl", "rpc-bind": "0.0.0.0:9091", "rpc-auth":
//! "me:secret", "no-dht": true}`. Options given on the command line win over it. Unknown
//! keys are refused, so a misspelt one is not silently ignored.

use serde::Deserialize;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Largest configuration file read.
const MAX_CONFIG: u64 = 1 << 20;

/// The configuration file's settings (each optional).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FileConfig {
    pub state_dir: Option<PathBuf>,
    pub download_dir: Option<PathBuf>,
    pub port: Option<u16>,
    pub bind: Option<std::net::IpAddr>,
    pub rpc_bind: Option<String>,
    pub rpc_auth: Option<String>,
    pub upload_limit: Option<String>,
    pub max_peers: Option<usize>,
    pub max_active: Option<usize>,
    pub no_trackers: Option<bool>,
    pub no_dht: Option<bool>,
    pub dht_bootstrap: Option<Vec<String>>,
}

/// Why the configuration file could not be used.
#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read {}: {error}", path.display())]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{} is over {MAX_CONFIG} bytes: not a configuration file", path.display())]
    TooLarge { path: PathBuf },
    #[error("{} is not a valid configuration: {error}", path.display())]
    Parse {
        path: PathBuf,
        error: serde_json::Error,
    },
}

impl FileConfig {
    /// Reads and parses a configuration file.
    pub fn load(path: &Path) -> Result<FileConfig, ConfigError> {
        let read = |error| ConfigError::Read {
            path: path.to_path_buf(),
            error,
        };
        let len = std::fs::metadata(path).map_err(read)?.len();
        if len > MAX_CONFIG {
            return Err(ConfigError::TooLarge {
                path: path.to_path_buf(),
            });
        }
        let bytes = std::fs::read(path).map_err(read)?;
        serde_json::from_slice(&bytes).map_err(|error| ConfigError::Parse {
            path: path.to_path_buf(),
            error,
        })
    }
}

/// The default state folder: `$XDG_DATA_HOME/battorrent`, else
/// `$HOME/.local/share/battorrent` (relative values are ignored, as the XDG spec says).
pub fn default_state_dir(xdg_data_home: Option<&str>, home: Option<&str>) -> Option<PathBuf> {
    let absolute = |v: Option<&str>| v.map(PathBuf::from).filter(|p| p.is_absolute());
    absolute(xdg_data_home)
        .map(|d| d.join("battorrent"))
        .or_else(|| absolute(home).map(|h| h.join(".local/share/battorrent")))
}

/// The default download folder: `$HOME/Downloads` if it exists, else `STATE/downloads`.
pub fn default_download_dir(home: Option<&str>, state_dir: &Path) -> PathBuf {
    home.map(|h| Path::new(h).join("Downloads"))
        .filter(|d| d.is_absolute() && d.is_dir())
        .unwrap_or_else(|| state_dir.join("downloads"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_folders() {
        assert_eq!(
            default_state_dir(Some("/x/data"), Some("/home/a")),
            Some(PathBuf::from("/x/data/battorrent"))
        );
        assert_eq!(
            default_state_dir(Some("relative"), Some("/home/a")),
            Some(PathBuf::from("/home/a/.local/share/battorrent"))
        );
        assert_eq!(default_state_dir(None, None), None);
        let state = Path::new("/s");
        assert_eq!(
            default_download_dir(Some("/nonexistent-home"), state),
            PathBuf::from("/s/downloads")
        );
        let home = std::env::temp_dir().join(format!("bt-home-{}", std::process::id()));
        std::fs::create_dir_all(home.join("Downloads")).unwrap();
        assert_eq!(
            default_download_dir(home.to_str(), state),
            home.join("Downloads")
        );
        let _ = std::fs::remove_dir_all(&home);
    }

    #[test]
    fn the_file_takes_the_long_option_names_and_refuses_others() {
        let dir = std::env::temp_dir().join(format!("bt-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c.json");
        std::fs::write(
            &path,
            br#"{"rpc-bind": "0.0.0.0:9091", "no-dht": true, "port": 7000}"#,
        )
        .unwrap();
        let c = FileConfig::load(&path).unwrap();
        assert_eq!(c.rpc_bind.as_deref(), Some("0.0.0.0:9091"));
        assert_eq!((c.no_dht, c.port), (Some(true), Some(7000)));
        std::fs::write(&path, br#"{"rpc_bind": "x"}"#).unwrap();
        let e = FileConfig::load(&path).unwrap_err().to_string();
        assert!(e.contains("rpc_bind"), "{e}");
        assert!(FileConfig::load(&dir.join("missing.json")).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
