//! The node's home directory (`$SMPL_HOME`) and the small files in it.
//!
//! The home holds the identity key, the API token and the licenses, so it is
//! mode 0700: other local users cannot list or read it.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use smpl_protocol::{Identity, NodeId};

use crate::net::RelayLimits;
use crate::util::fs::{WriteError, mode, write_atomic};

#[derive(Debug, thiserror::Error)]
pub enum HomeError {
    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a valid smpl identity key (expected 64 hex digits)")]
    BadIdentity { path: PathBuf },
    #[error("cannot read config {path}: {reason}")]
    BadConfig { path: PathBuf, reason: String },
    #[error("no node is running for {home} (start one with `smpl --home {home} node`)")]
    NotRunning { home: PathBuf },
}

impl From<WriteError> for HomeError {
    fn from(WriteError { action, path, source }: WriteError) -> Self {
        HomeError::Io { action, path, source }
    }
}

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> HomeError {
    let path = path.to_path_buf();
    move |source| HomeError::Io { action, path, source }
}

/// `config.toml`: what the producer may edit by hand.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// Display name on published packs.
    pub name: String,
    /// Where fetched packs are written as plain files.
    pub library: PathBuf,
    /// Peers to join through at every start: invite lines (`smpl invite`) or
    /// multiaddrs ending in `/p2p/<peer id>`.
    pub bootstrap: Vec<String>,
    /// What this node grants others when it runs as a relay (`smpl node
    /// --relay-server`, or once AutoNAT finds it public).
    pub relay_server: RelayLimits,
    /// Memory the store and the index may keep, beside a DAW.
    pub memory: MemoryConfig,
}

/// What the node takes beside a DAW: memory for caches, in megabytes, and the
/// threads of a search, with laptop defaults (what a node costs as its catalogue
/// grows: docs/BENCHMARKS.md, "Scale").
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MemoryConfig {
    /// The store's page cache (sled): listings recently read. Pages written in
    /// this run are kept beyond it.
    pub store_cache_mb: u64,
    /// The index writer's buffer: documents held before they are written to a
    /// segment (at least 15 MB).
    pub index_writer_mb: u64,
    /// Read the whole index into memory when the node starts: searches never wait
    /// for a page, at the cost of the index's size in memory (151 MB at a million
    /// samples). Off, the pages searches touch are read as needed, and the kernel
    /// may take them back when a DAW needs the memory.
    pub index_preload: bool,
    /// Threads one search runs on, the index's segments shared among them: two
    /// answer a broad search on a large catalogue in about two thirds of the time
    /// one takes, at the same processor time. 1 searches on the API's own thread.
    pub search_threads: usize,
}

impl Default for MemoryConfig {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        MemoryConfig {
            store_cache_mb: 16,
            index_writer_mb: 16,
            index_preload: false,
            search_threads: cores.min(2),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        let library = std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("."))
            .join("smpl")
            .join("library");
        Config {
            name: std::env::var("USER").unwrap_or_else(|_| "producer".into()),
            library,
            bootstrap: Vec::new(),
            relay_server: RelayLimits::default(),
            memory: MemoryConfig::default(),
        }
    }
}

/// What a running node writes to `node.json`, and `smpl id` prints.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NodeInfo {
    pub node_id: NodeId,
    pub api: String,
    pub listen: Vec<String>,
    pub pid: u32,
}

/// Paths inside one home directory.
#[derive(Clone, Debug)]
pub struct Home {
    root: PathBuf,
}

impl Home {
    pub fn new(root: impl Into<PathBuf>) -> Home {
        Home { root: root.into() }
    }

    /// `--home`, else `$SMPL_HOME`, else the platform data dir.
    pub fn default_root() -> PathBuf {
        if let Some(h) = std::env::var_os("SMPL_HOME") {
            return PathBuf::from(h);
        }
        let data = std::env::var_os("XDG_DATA_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local").join("share")))
            .unwrap_or_else(|| PathBuf::from("."));
        data.join("smpl")
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn identity_path(&self) -> PathBuf {
        self.root.join("identity.key")
    }
    pub fn config_path(&self) -> PathBuf {
        self.root.join("config.toml")
    }
    pub fn db_dir(&self) -> PathBuf {
        self.root.join("db")
    }
    pub fn blobs_dir(&self) -> PathBuf {
        self.root.join("blobs")
    }
    pub fn index_dir(&self) -> PathBuf {
        self.root.join("index")
    }
    pub fn licenses_dir(&self) -> PathBuf {
        self.root.join("licenses")
    }
    pub fn node_json_path(&self) -> PathBuf {
        self.root.join("node.json")
    }
    pub fn token_path(&self) -> PathBuf {
        self.root.join("api.token")
    }
    /// Listings fetched from peers and not taken, while the node is stopped.
    pub fn sync_passed_path(&self) -> PathBuf {
        self.root.join("sync-passed")
    }

    /// Creates the home (0700), identity and config where missing; keeps what
    /// exists, but takes group and other permissions off an existing home.
    /// Returns the identity and whether it was newly created.
    pub fn init(&self) -> Result<(Identity, bool), HomeError> {
        create_private_dir(&self.root)?;
        let path = self.identity_path();
        let created = !path.exists();
        if created {
            let mut secret = [0u8; 32];
            getrandom::fill(&mut secret).map_err(|e| HomeError::Io {
                action: "generate a key for",
                path: path.clone(),
                source: std::io::Error::other(e.to_string()),
            })?;
            write_private(&path, format!("{}\n", hex(&secret)).as_bytes())?;
        }
        if !self.config_path().exists() {
            self.save_config(&Config::default())?;
        }
        Ok((self.identity()?, created))
    }

    pub fn identity(&self) -> Result<Identity, HomeError> {
        let path = self.identity_path();
        let text = fs::read_to_string(&path).map_err(io("read", &path))?;
        let text = text.trim();
        let mut secret = [0u8; 32];
        if text.len() != 64 {
            return Err(HomeError::BadIdentity { path });
        }
        for (i, byte) in secret.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16)
                .map_err(|_| HomeError::BadIdentity { path: path.clone() })?;
        }
        Ok(Identity::from_secret_bytes(secret))
    }

    pub fn config(&self) -> Result<Config, HomeError> {
        let path = self.config_path();
        match fs::read_to_string(&path) {
            Ok(text) => {
                toml::from_str(&text).map_err(|e| HomeError::BadConfig { path, reason: e.to_string() })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Config::default()),
            Err(e) => Err(HomeError::Io { action: "read", path, source: e }),
        }
    }

    pub fn save_config(&self, config: &Config) -> Result<(), HomeError> {
        let path = self.config_path();
        let text = toml::to_string_pretty(config)
            .map_err(|e| HomeError::BadConfig { path: path.clone(), reason: e.to_string() })?;
        Ok(write_atomic(&path, text.as_bytes(), mode::SHARED)?)
    }

    /// Makes a fresh API token (0600) and returns it.
    pub fn new_api_token(&self) -> Result<String, HomeError> {
        let mut raw = [0u8; 32];
        getrandom::fill(&mut raw).map_err(|e| HomeError::Io {
            action: "generate",
            path: self.token_path(),
            source: std::io::Error::other(e.to_string()),
        })?;
        let token = hex(&raw);
        write_private(&self.token_path(), token.as_bytes())?;
        Ok(token)
    }

    pub fn api_token(&self) -> Result<String, HomeError> {
        let path = self.token_path();
        fs::read_to_string(&path)
            .map(|t| t.trim().to_string())
            .map_err(|_| HomeError::NotRunning { home: self.root.clone() })
    }

    pub fn write_node_info(&self, info: &NodeInfo) -> Result<(), HomeError> {
        let json = serde_json::to_vec_pretty(info).map_err(|e| HomeError::Io {
            action: "encode",
            path: self.node_json_path(),
            source: e.into(),
        })?;
        Ok(write_atomic(&self.node_json_path(), &json, mode::SHARED)?)
    }

    /// The running node's info, or `NotRunning` when there is none.
    pub fn node_info(&self) -> Result<NodeInfo, HomeError> {
        let path = self.node_json_path();
        let not_running = || HomeError::NotRunning { home: self.root.clone() };
        let bytes = fs::read(&path).map_err(|_| not_running())?;
        let info: NodeInfo = serde_json::from_slice(&bytes).map_err(|_| not_running())?;
        if !process_alive(info.pid) {
            return Err(not_running());
        }
        Ok(info)
    }

    pub fn remove_node_info(&self) {
        let _ = fs::remove_file(self.node_json_path());
    }
}

fn process_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists() || !Path::new("/proc/self").exists()
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Creates `dir` with mode 0700 (its missing parents with the usual mode), or,
/// when it exists with group or other permissions, takes those away and logs it.
fn create_private_dir(dir: &Path) -> Result<(), HomeError> {
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(io("create", parent))?;
    }
    let mut builder = fs::DirBuilder::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    match builder.create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && dir.is_dir() => {}
        Err(e) => return Err(HomeError::Io { action: "create", path: dir.to_path_buf(), source: e }),
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(dir).map_err(io("inspect", dir))?.permissions().mode();
        if mode & 0o077 != 0 {
            let private = mode & !0o077;
            fs::set_permissions(dir, fs::Permissions::from_mode(private))
                .map_err(io("restrict the permissions of", dir))?;
            tracing::warn!(
                home = %dir.display(),
                was = %format_args!("{:o}", mode & 0o777),
                now = %format_args!("{:o}", private & 0o777),
                "the home directory was open to other users; made it private"
            );
        }
    }
    Ok(())
}

/// Writes a file readable only by its owner, atomically.
fn write_private(path: &Path, data: &[u8]) -> Result<(), HomeError> {
    Ok(write_atomic(path, data, mode::PRIVATE)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_keeps_identity_and_writes_0600() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::new(dir.path());
        let (id1, created1) = home.init().unwrap();
        let (id2, created2) = home.init().unwrap();
        assert!(created1 && !created2);
        assert_eq!(id1.node_id(), id2.node_id());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(home.identity_path()).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[cfg(unix)]
    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[cfg(unix)]
    #[test]
    fn a_new_home_is_0700() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("parent").join("home");
        Home::new(&root).init().unwrap();
        assert_eq!(mode(&root), 0o700);
    }

    #[cfg(unix)]
    #[test]
    fn an_open_home_is_made_0700_and_keeps_its_files() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("home");
        let home = Home::new(&root);
        let (id, _) = home.init().unwrap();
        for open in [0o755, 0o770, 0o701] {
            fs::set_permissions(&root, fs::Permissions::from_mode(open)).unwrap();
            let (again, created) = home.init().unwrap();
            assert_eq!(mode(&root), 0o700, "from {open:o}");
            assert!(!created);
            assert_eq!(again.node_id(), id.node_id());
        }
        // A home the owner made stricter stays so.
        fs::set_permissions(&root, fs::Permissions::from_mode(0o500)).unwrap();
        let stricter = home.init().map(|_| mode(&root));
        // Writable again, so the temporary directory can be removed.
        fs::set_permissions(&root, fs::Permissions::from_mode(0o700)).unwrap();
        assert_eq!(stricter.unwrap(), 0o500);
    }

    #[test]
    fn corrupt_identity_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::new(dir.path());
        fs::write(home.identity_path(), "not a key").unwrap();
        let err = home.identity().unwrap_err().to_string();
        assert!(err.contains("identity.key"), "{err}");
    }
}
