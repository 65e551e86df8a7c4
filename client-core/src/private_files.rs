//! Files and folders only their owner may read: a device's profile (its key, tokens and grids) and a server's
//! data dir (its secret and database). They are created with modes 0600 and 0700 whatever the process's umask
//! (under the usual 022, files would otherwise be readable by every user of the machine), and `loosened` tells
//! which ones someone made readable to others since, with the command that tightens them again.

use std::fs::OpenOptions;
use std::io;
use std::path::Path;

/// Mode of a private file.
pub const FILE_MODE: u32 = 0o600;
/// Mode of a private folder.
pub const DIR_MODE: u32 = 0o700;

/// Creates a folder and any missing parents, each for its owner only. An existing folder is left as it is.
pub fn create_dir_all(path: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(DIR_MODE);
    }
    builder.create(path)
}

/// Options that create a missing file for its owner only (add `write`, `create`, `append`… as needed).
pub fn options() -> OpenOptions {
    let mut options = OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(FILE_MODE);
    }
    options
}

/// Makes an open file its owner's only: for a file that may have existed before with another mode (the mode
/// given at creation applies only to a new file).
pub fn restrict(file: &std::fs::File) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(FILE_MODE))?;
    }
    #[cfg(not(unix))]
    let _ = file;
    Ok(())
}

/// A warning for each of `dir` and the files and folders directly in it that other users of the machine may
/// read or enter, naming it and the `chmod` that makes it private again. Nothing on systems without Unix modes,
/// and nothing for a `dir` that does not exist.
pub fn loosened(dir: &Path) -> Vec<String> {
    let mut warnings: Vec<String> = warning(dir).into_iter().collect();
    if let Ok(entries) = std::fs::read_dir(dir) {
        warnings.extend(entries.flatten().filter_map(|e| warning(&e.path())));
    }
    warnings
}

#[cfg(unix)]
fn warning(path: &Path) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    // Not followed: a symbolic link's own mode means nothing; what it points to is checked where it lives.
    let meta = std::fs::symlink_metadata(path).ok()?;
    let mode = meta.permissions().mode() & 0o777;
    if meta.file_type().is_symlink() || mode & 0o077 == 0 {
        return None;
    }
    let (what, want) = if meta.is_dir() { ("folder", DIR_MODE) } else { ("file", FILE_MODE) };
    Some(format!(
        "the {what} {} can be read by other users of this machine (mode {mode:04o}); it holds private data: \
         run `chmod {want:o} {}`",
        path.display(),
        path.display()
    ))
}

#[cfg(not(unix))]
fn warning(_: &Path) -> Option<String> {
    None
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn files_and_folders_are_created_private_and_loosened_ones_are_named() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b");
        create_dir_all(&dir).unwrap();
        assert_eq!((mode(&tmp.path().join("a")), mode(&dir)), (0o700, 0o700));
        let file = dir.join("key.json");
        drop(options().write(true).create_new(true).open(&file).unwrap());
        assert_eq!(mode(&file), 0o600);
        assert!(loosened(&dir).is_empty());
        assert!(loosened(&tmp.path().join("missing")).is_empty());

        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let warnings = loosened(&dir);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains(&format!("run `chmod 600 {}`", file.display())), "{warnings:?}");
        assert!(warnings[0].contains("mode 0644"), "{warnings:?}");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let warnings = loosened(&dir);
        assert!(warnings[0].contains(&format!("run `chmod 700 {}`", dir.display())), "{warnings:?}");
        assert_eq!(warnings.len(), 2, "{warnings:?}");

        // An existing file opened again is made private.
        let f = options().write(true).open(&file).unwrap();
        restrict(&f).unwrap();
        assert_eq!(mode(&file), 0o600);
    }
}
