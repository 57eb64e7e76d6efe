//! The SQLite file holds personal data: it is created readable and writable by its owner only.
//!
//! SQLite creates a missing file with the process umask (usually 0644, world-readable), and its
//! `-wal` and `-shm` files with the permissions of the database file. Creating the empty file
//! ourselves with mode 0600 first (SQLite takes an empty file as an empty database) makes all
//! three private.

use std::io;
use std::path::Path;

/// Creates the database file of a `sqlite://path?mode=rwc` URL with mode 0600 when it does not
/// exist yet. In-memory databases, and URLs that do not ask SQLite to create the file, are left
/// alone; an existing file keeps whatever mode its operator gave it.
pub(crate) fn create_private(url: &str) -> io::Result<()> {
    let Some(path) = file_to_create(url) else {
        return Ok(());
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(Path::new(path)) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// The path of a file-backed URL with `mode=rwc` (`sqlite://path?…`, `sqlite:path?…`).
fn file_to_create(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let creates = query.split('&').any(|pair| pair == "mode=rwc");
    let in_memory = path.is_empty() || path == ":memory:" || query.contains("mode=memory");
    (creates && !in_memory).then_some(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_files_sqlite_would_create_are_created() {
        assert_eq!(
            file_to_create("sqlite://verdict.db?mode=rwc"),
            Some("verdict.db")
        );
        assert_eq!(
            file_to_create("sqlite:///var/lib/verdict/v.db?mode=rwc&cache=shared"),
            Some("/var/lib/verdict/v.db")
        );
        assert_eq!(file_to_create("sqlite:v.db?mode=rwc"), Some("v.db"));
        assert_eq!(file_to_create("sqlite://verdict.db"), None);
        assert_eq!(file_to_create("sqlite://verdict.db?mode=ro"), None);
        assert_eq!(file_to_create("sqlite::memory:"), None);
        assert_eq!(file_to_create("sqlite://:memory:?mode=rwc"), None);
        assert_eq!(file_to_create("postgres://u:p@h/db"), None);
    }

    #[cfg(unix)]
    #[test]
    fn a_new_file_is_private_and_an_existing_one_untouched() {
        use std::os::unix::fs::PermissionsExt as _;

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.db");
        create_private(&format!("sqlite://{}?mode=rwc", path.display())).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        create_private(&format!("sqlite://{}?mode=rwc", path.display())).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o640);
    }
}
