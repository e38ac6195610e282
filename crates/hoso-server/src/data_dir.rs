//! The layout of a server's data directory, in one place: the server opens its store and
//! snapshot through it, and the clients that read a development server's tokens find them by it.

use std::path::{Path, PathBuf};

/// A server's data directory (`data_dir` in the configuration) and where each of its files lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataDir(PathBuf);

impl DataDir {
    /// The data directory at `path` (nothing is created).
    pub fn new(path: impl Into<PathBuf>) -> DataDir {
        DataDir(path.into())
    }

    /// The directory holding a development tokens file, whose layout it then is.
    pub fn of_dev_tokens(tokens_file: &Path) -> Option<DataDir> {
        tokens_file.parent().map(DataDir::new)
    }

    /// The directory itself.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// The embedded store's directory.
    pub fn store(&self) -> PathBuf {
        self.0.join("store")
    }

    /// The projection's snapshot file (`snapshot`); deleting it is always safe.
    pub fn snapshot(&self) -> PathBuf {
        self.0.join("projection").join("dossiers.snapshot")
    }

    /// The development tokens in the clear, one `role token` line each, for the callers of a
    /// server without a `tokens_file` (readable by the owner only).
    pub fn dev_tokens(&self) -> PathBuf {
        self.0.join("dev-tokens.txt")
    }

    /// The development tokens' hashes with their subjects and units, as the server reads them.
    pub fn dev_token_hashes(&self) -> PathBuf {
        self.0.join("dev-tokens.toml")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The layout operators read in README.md and docs/operations.md, and keep across upgrades.
    #[test]
    fn the_layout_is_the_documented_one() {
        let dir = DataDir::new("/var/lib/hoso");
        assert_eq!(dir.store(), Path::new("/var/lib/hoso/store"));
        assert_eq!(dir.snapshot(), Path::new("/var/lib/hoso/projection/dossiers.snapshot"));
        assert_eq!(dir.dev_tokens(), Path::new("/var/lib/hoso/dev-tokens.txt"));
        assert_eq!(dir.dev_token_hashes(), Path::new("/var/lib/hoso/dev-tokens.toml"));
        assert_eq!(DataDir::of_dev_tokens(&dir.dev_tokens()), Some(dir));
    }
}
