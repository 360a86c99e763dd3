//! Where a job's or an agent's repository may lie: under one of the roots the operator
//! allowed, named by an absolute path that leads to a directory.

use super::names::shown;
use std::path::{Path, PathBuf};

/// The repository `path`, canonical, if it lies under one of `roots` (themselves
/// canonical).
///
/// # Errors
/// Why it is refused, naming the path.
pub fn check_repository(roots: &[PathBuf], path: &str) -> Result<String, String> {
    let refused = |why: &str| format!("repository_path `{}` {why}", shown(path));
    if !Path::new(path).is_absolute() {
        return Err(refused("must be an absolute path"));
    }
    if roots.is_empty() {
        return Err(refused(
            "is refused: this host allows no repository roots (--repo-root)",
        ));
    }
    let canonical =
        std::fs::canonicalize(path).map_err(|e| refused(&format!("cannot be opened: {e}")))?;
    if !canonical.is_dir() {
        return Err(refused("is not a directory"));
    }
    if !roots.iter().any(|root| canonical.starts_with(root)) {
        return Err(refused("is not under an allowed repository root"));
    }
    canonical
        .into_os_string()
        .into_string()
        .map_err(|_| refused("is not valid UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repositories_must_lie_under_a_root() {
        let root = tempfile::tempdir().unwrap();
        let inside = root.path().join("repo");
        std::fs::create_dir(&inside).unwrap();
        let roots = vec![std::fs::canonicalize(root.path()).unwrap()];
        assert!(check_repository(&roots, inside.to_str().unwrap()).is_ok());
        let escape = format!("{}/../", inside.display());
        assert!(check_repository(&roots, &format!("{escape}..")).is_err());
        assert!(check_repository(&roots, "/etc").is_err());
        assert!(check_repository(&[], inside.to_str().unwrap()).is_err());
        assert!(check_repository(&roots, "/no/such/dir").is_err());
        let relative = check_repository(&roots, "repo").unwrap_err();
        assert!(relative.contains("absolute"), "{relative}");
    }
}
