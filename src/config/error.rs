//! Every way loading a configuration can fail, each naming the file at fault.

use std::path::{Path, PathBuf};

pub use super::located::Located;

/// Every way loading a configuration can fail.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Invalid(#[from] Located),
    #[error(transparent)]
    Ranges(#[from] crate::identify::ranges::RangeError),
    #[error(transparent)]
    Catalog(#[from] crate::catalog::CatalogError),
    #[error(transparent)]
    Network(#[from] crate::identify::network::NetworkError),
    #[error("{path}: template error: {message}")]
    Template { path: PathBuf, message: String },
}

/// Reads a file, naming it in the error.
pub fn read(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })
}
