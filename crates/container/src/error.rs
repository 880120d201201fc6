//! The crate's error type.

use std::io;
use std::path::PathBuf;

/// Everything that can fail in `hull-container`: one variant per failing
/// operation, naming its object.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A builder setting is invalid; the field and the reason are named.
    #[error("invalid container setting {field}: {problem}")]
    Invalid {
        /// The builder field at fault.
        field: &'static str,
        /// Why.
        problem: String,
    },

    /// A path given to the builder does not exist or cannot be used.
    #[error("{field} {path}: {source}")]
    Path {
        /// The builder field at fault.
        field: &'static str,
        /// The path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },

    /// Creating or removing the container's runtime directory failed.
    #[error("{action} runtime directory {path}: {source}")]
    RuntimeDir {
        /// What was being done.
        action: &'static str,
        /// The directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },

    /// Spawning or controlling the container's processes failed.
    #[error("container {id}: {source}")]
    Process {
        /// The container.
        id: String,
        /// The namespace/process error, naming the failed step.
        #[source]
        source: hull_ns::Error,
    },

    /// The operation is not valid in the container's current state.
    #[error("container {id} is {status}: cannot {action}")]
    State {
        /// The container.
        id: String,
        /// Its status.
        status: crate::Status,
        /// What was asked.
        action: &'static str,
    },

    /// Creating, configuring or removing the container's cgroup failed.
    #[error("container {id}: {source}")]
    Cgroup {
        /// The container.
        id: String,
        /// The cgroup error, naming the file.
        #[source]
        source: hull_cgroup::Error,
    },

    /// Mounting the overlay root file system failed.
    #[error("container {id}: {source}")]
    Overlay {
        /// The container.
        id: String,
        /// The overlay error, naming the path.
        #[source]
        source: Box<hull_overlayfs::Error>,
    },

    /// Setting up or tearing down the container's network failed.
    #[error("container {id}: network: {source}")]
    Network {
        /// The container.
        id: String,
        /// The netlink, IPAM or file error.
        #[source]
        source: Box<hull_netns::Error>,
    },

    /// Setting up the container's terminal failed.
    #[error("container {id}: open pseudo-terminal: {source}")]
    Terminal {
        /// The container.
        id: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },

    /// An OCI runtime spec field cannot be honoured.
    #[error("OCI spec field {field}: {problem}")]
    Oci {
        /// The field, as a JSON path (e.g. `linux.namespaces[2].path`).
        field: String,
        /// Why it cannot be used.
        problem: String,
    },

    /// A state file cannot be read or makes no sense.
    #[error("state file {path}: {problem}")]
    StateFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },

    /// No container with this id in the state store.
    #[error("no container {id} in {root}")]
    NotFound {
        /// The id asked for.
        id: String,
        /// The runtime root searched.
        root: PathBuf,
    },

    /// Waiting with a timeout failed.
    #[error("wait for container {id}: {source}")]
    Wait {
        /// The container.
        id: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },

    /// Resolving, unpacking or writing an image failed.
    #[error("image {reference}: {source}")]
    Image {
        /// The reference (or what was being written).
        reference: String,
        /// The layout, snapshot or layer error.
        #[source]
        source: Box<hull_image_layers::Error>,
    },

    /// Copying a file into or out of a container failed.
    #[error("container {id}: copy {path}: {op}: {source}")]
    Copy {
        /// The container (or the build context).
        id: String,
        /// The path at fault (inside the container, or on the host).
        path: PathBuf,
        /// The operation.
        op: &'static str,
        /// The OS error (`ENOENT` or `ELOOP` for a path that would leave
        /// the container's root).
        #[source]
        source: io::Error,
    },

    /// A Dockerfile line cannot be parsed or is not supported.
    #[error("Dockerfile line {line}: {problem}")]
    Dockerfile {
        /// The line number (1-based) where the instruction starts.
        line: usize,
        /// What is wrong.
        problem: String,
    },

    /// A Dockerfile step failed.
    #[error("Dockerfile line {line} ({instruction}): {source}")]
    BuildStep {
        /// The line number (1-based) where the instruction starts.
        line: usize,
        /// The instruction, e.g. `RUN`.
        instruction: String,
        /// Why it failed.
        #[source]
        source: Box<Error>,
    },

    /// Reading a running container's statistics failed.
    #[error("container {id}: read {path}: {source}")]
    Stats {
        /// The container.
        id: String,
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },

    /// A process run for the caller (a build step) exited unsuccessfully.
    #[error("container {id}: {command:?} exited with {status}")]
    CommandFailed {
        /// The container.
        id: String,
        /// The command.
        command: Vec<String>,
        /// How it ended.
        status: hull_ns::ExitStatus,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
