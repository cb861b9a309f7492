//! Writing files so that a reader, or a kill at any moment, sees either the old file or the new
//! one, never a part: the galleries, the fetched models and the launcher's stored crops.

use std::io::Write;
use std::path::Path;

use tempfile::NamedTempFile;

use crate::{Error, Result};

/// A temporary file beside `path`, named `.<file name>.<random>.tmp` so that a leftover from a
/// killed process is recognisable (the launcher's store removes `*.tmp` when it opens). It is
/// removed when dropped unless [`commit`] puts it in place.
///
/// Its mode is `0666` less the umask, as `File::create` would make it: a gallery written by one
/// user must stay readable by the container user that loads it (tempfile's default is `0600`).
pub fn staging_file(path: &Path) -> Result<NamedTempFile> {
    use std::os::unix::fs::PermissionsExt;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".into());
    tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .permissions(std::fs::Permissions::from_mode(0o666))
        .tempfile_in(parent_dir(path))
        .map_err(|e| Error::io(path, without_staging_path(e)))
}

/// tempfile wraps its errors to append " at path <staging file>" (its wrapper is private and
/// hides the OS error's code); the error already names the target, so the suffix is cut and the
/// operating system's message kept ("No such file or directory (os error 2)").
fn without_staging_path(e: std::io::Error) -> std::io::Error {
    if e.get_ref().is_none() {
        return e;
    }
    let message = e.to_string();
    match message.rfind(" at path ") {
        Some(end) => std::io::Error::new(e.kind(), &message[..end]),
        None => e,
    }
}

/// Flushes `staged` to disk and renames it over `path`, then syncs the folder so that the
/// rename itself survives a power cut.
pub fn commit(staged: NamedTempFile, path: &Path) -> Result<()> {
    staged
        .as_file()
        .sync_all()
        .map_err(|e| Error::io(path, e))?;
    staged
        .persist(path)
        .map_err(|e| Error::io(path, without_staging_path(e.error)))?;
    if let Ok(dir) = std::fs::File::open(parent_dir(path)) {
        let _ = dir.sync_all();
    }
    Ok(())
}

/// Writes `bytes` to `path` atomically: a staging file beside it, fsynced, then a rename. On
/// any failure `path` is untouched and the staging file is gone.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut staged = staging_file(path)?;
    staged.write_all(bytes).map_err(|e| Error::io(path, e))?;
    commit(staged, path)
}

fn parent_dir(path: &Path) -> &Path {
    path.parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn replaces_the_file_and_leaves_no_staging_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.data");
        std::fs::write(&path, b"old").unwrap();
        write_atomically(&path, b"new").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["model.data"]);
        // Readable by others (0666 less the umask, 022 or 002 here), not tempfile's 0600.
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode & 0o044, 0o044, "mode {mode:o}");
    }

    #[test]
    fn a_failed_write_leaves_the_old_file_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.data");
        std::fs::write(&path, b"old").unwrap();
        // The target is a folder: the rename fails after the data was staged.
        let folder = dir.path().join("folder");
        std::fs::create_dir(&folder).unwrap();
        std::fs::write(folder.join("inside"), b"x").unwrap();
        let err = write_atomically(&folder, b"new").unwrap_err();
        assert!(
            err.to_string().starts_with(&folder.display().to_string()),
            "{err}"
        );
        let mut names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["folder", "model.data"]);
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
    }
}
