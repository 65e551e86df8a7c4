//! The storage layer: the database and its writer, grid documents, the SQL projection of their contents, every
//! other table's statements (one module per what it stores), and moving data between backends. It is the only
//! place with SQL, and answers with `StoreError`, which `http::error` maps to statuses.

pub mod activity;
pub mod area_progress;
pub mod areas;
pub mod audit;
pub mod blobs;
pub mod bulletins;
mod campaign_sql;
pub mod campaigns;
pub mod coverage;
pub mod db;
pub mod device_grids;
pub mod devices;
pub mod directory;
pub mod documents;
pub mod enrolment_codes;
pub mod error;
pub mod grids;
pub mod hubs;
pub mod liaisons;
pub mod migrate;
pub mod people;
pub mod photos;
pub mod places;
pub mod projection;
pub mod sessions;
pub mod settings;
pub mod submissions;
pub mod tasks;
pub mod throttle;

pub use error::{StoreError, StoreResult};

#[cfg(test)]
mod layering {
    use std::path::{Path, PathBuf};

    /// What running a statement looks like in the source.
    const SQL_CALLS: &[&str] = &["sqlx::query", "query_as", "query_scalar", "AssertSqlSafe", "raw_sql"];

    fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("readable source folder") {
            let path = entry.expect("readable source entry").path();
            if path.is_dir() {
                rust_files(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    /// No file under `server/src` outside `store/` runs SQL.
    #[test]
    fn sql_lives_in_the_store_only() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        rust_files(&src, &mut files);
        let mut strays: Vec<String> = files
            .iter()
            .map(|f| (f, f.strip_prefix(&src).expect("under src").to_string_lossy().replace('\\', "/")))
            .filter(|(_, rel)| !rel.starts_with("store/"))
            .filter(|(f, _)| {
                let text = std::fs::read_to_string(f).expect("readable source file");
                SQL_CALLS.iter().any(|call| text.contains(call))
            })
            .map(|(_, rel)| rel)
            .collect();
        strays.sort();
        assert!(strays.is_empty(), "SQL outside store/ (move it into a store module): {strays:?}");
    }
}
