//! Durable, private file handling for the store: permission checks, and atomic writes
//! (temp file in the same directory, fsync, rename, fsync of the directory).

use std::{
    fs::{self, DirBuilder, File, OpenOptions},
    io::{ErrorKind, Read, Write},
    os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt},
    path::{Path, PathBuf},
};

use super::FileError;

fn io<'a>(path: &'a Path, what: &'static str) -> impl FnOnce(std::io::Error) -> FileError + 'a {
    move |source| FileError::Io {
        path: path.to_path_buf(),
        what,
        source,
    }
}

/// Create the directory 0700 when missing; refuse one that others may write.
pub fn prepare_directory(directory: &Path) -> Result<(), FileError> {
    // Only a directory that is really absent is created: one that exists but cannot be
    // reached (a parent without search permission, a symlink loop) is reported as such,
    // not as a failed creation.
    match fs::metadata(directory) {
        Ok(_) => {}
        Err(error) if error.kind() == ErrorKind::NotFound => {
            DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(directory)
                .map_err(io(directory, "cannot create the directory"))?;
        }
        Err(error) => return Err(io(directory, unreachable_directory(&error))(error)),
    }
    let metadata = fs::metadata(directory).map_err(io(directory, "cannot read the directory"))?;
    let mode = metadata.permissions().mode();
    if mode & 0o022 != 0 {
        return Err(FileError::DirectoryMode {
            path: directory.to_path_buf(),
            mode: mode & 0o7777,
        });
    }
    Ok(())
}

/// Why an existing directory could not be looked at, for the message.
fn unreachable_directory(error: &std::io::Error) -> &'static str {
    match error.kind() {
        ErrorKind::PermissionDenied => {
            "the directory or one of its parents exists but cannot be entered"
        }
        _ => "cannot reach the directory",
    }
}

/// An existing store must be a regular file only its owner can read or write, and not a
/// symbolic link: the atomic rename would replace the link with a file (the target keeping
/// a consumed token), and a server given the target's path would lock another lock file.
pub fn check_file(path: &Path) -> Result<(), FileError> {
    if let Ok(metadata) = fs::symlink_metadata(path)
        && metadata.file_type().is_symlink()
    {
        return Err(FileError::Symlink {
            path: path.to_path_buf(),
            target: fs::read_link(path).unwrap_or_default(),
        });
    }
    let metadata = match fs::metadata(path) {
        Ok(metadata) => metadata,
        Err(error) if error.kind() == ErrorKind::NotFound => return Ok(()),
        Err(error) => return Err(io(path, "cannot read the file's metadata")(error)),
    };
    if !metadata.is_file() {
        return Err(FileError::NotAFile {
            path: path.to_path_buf(),
        });
    }
    let mode = metadata.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(FileError::FileMode {
            path: path.to_path_buf(),
            mode: mode & 0o7777,
        });
    }
    Ok(())
}

/// A temporary file an interrupted write left beside the store.
pub struct Temporary {
    pub path: PathBuf,
    /// Its bytes, when it is a private regular file that could be read.
    pub bytes: Option<zeroize::Zeroizing<Vec<u8>>>,
    /// Whether it was last modified longer ago than the age asked about.
    pub old: bool,
}

/// The temporary files of this store (`NAME.tmp.*`) found beside it. Called with the lock
/// held, so no writer is using any of them.
pub fn temporaries(path: &Path, age: std::time::Duration) -> Vec<Temporary> {
    let (Some(directory), Some(name)) = (path.parent(), path.file_name()) else {
        return Vec::new();
    };
    let mut prefix = name.to_os_string();
    prefix.push(".tmp.");
    let prefix = prefix.to_string_lossy().into_owned();
    let Ok(entries) = fs::read_dir(directory) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|entry| entry.file_name().to_string_lossy().starts_with(&prefix))
        .map(|entry| {
            // Not followed through a link, and only a private file is trusted.
            let metadata = fs::symlink_metadata(entry.path()).ok();
            let private = metadata
                .as_ref()
                .is_some_and(|m| m.is_file() && m.permissions().mode() & 0o077 == 0);
            let old = metadata
                .as_ref()
                .and_then(|m| m.modified().ok())
                .is_some_and(|modified| modified.elapsed().is_ok_and(|elapsed| elapsed > age));
            let bytes = if private {
                fs::read(entry.path()).ok().map(zeroize::Zeroizing::new)
            } else {
                None
            };
            Temporary {
                path: entry.path(),
                bytes,
                old,
            }
        })
        .collect()
}

/// The file's bytes, or `None` when it does not exist yet.
pub fn read_if_present(path: &Path) -> Result<Option<Vec<u8>>, FileError> {
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(io(path, "cannot open the file")(error)),
    };
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)
        .map_err(io(path, "cannot read the file"))?;
    Ok(Some(bytes))
}

/// Replace `path` with `bytes` so that a crash at any point leaves the old or the new file.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), FileError> {
    let directory = path.parent().unwrap_or_else(|| Path::new("/"));
    let mut temp_name = path.file_name().unwrap_or_default().to_os_string();
    temp_name.push(format!(
        ".tmp.{}.{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ));
    let temp = path.with_file_name(temp_name);
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)
            .map_err(io(&temp, "cannot create a temporary file beside the store"))?;
        file.write_all(bytes)
            .map_err(io(&temp, "cannot write the temporary file"))?;
        file.sync_all()
            .map_err(io(&temp, "cannot flush the temporary file to disk"))?;
        drop(file);
        fs::rename(&temp, path).map_err(io(path, "cannot replace the store"))?;
        File::open(directory)
            .and_then(|dir| dir.sync_all())
            .map_err(io(directory, "cannot flush the directory to disk"))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}
