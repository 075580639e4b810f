//! [`ChaosError`]: what can stop a chaos run before its history is checked.

/// Why a run could not be set up, driven or read back.
#[derive(Debug, thiserror::Error)]
pub enum ChaosError {
    /// A command (`ip`, `nft`, `mount`) failed.
    #[error("`{command}` failed: {stderr}")]
    Command {
        /// The command line.
        command: String,
        /// What it printed on stderr (or why it could not start).
        stderr: String,
    },
    /// The harness needs root for network namespaces, packet filters and tmpfs mounts.
    #[error("vltava-chaos needs root (network namespaces, nftables, tmpfs): {0}")]
    NotRoot(String),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The cluster did not start or settle in time.
    #[error("the cluster {0}")]
    Cluster(String),
    /// A client call of the harness itself (not of the workload) failed.
    #[error("client: {0}")]
    Client(#[from] vltava_client::ClientError),
    /// The run was interrupted (SIGINT or SIGTERM); the cluster and the network were removed.
    #[error("interrupted")]
    Interrupted,
    /// A JSON document could not be written.
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
}

/// Attaches a path to an I/O error.
pub(crate) trait IoContext<T> {
    /// The error, with `path`.
    fn at(self, path: &std::path::Path) -> Result<T, ChaosError>;
}

impl<T> IoContext<T> for Result<T, std::io::Error> {
    fn at(self, path: &std::path::Path) -> Result<T, ChaosError> {
        self.map_err(|source| ChaosError::Io { path: path.display().to_string(), source })
    }
}
