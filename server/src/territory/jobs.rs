//! Territory imports the dashboard follows: each runs as a job with an id, whose phase and counts the office polls
//! (`GET /api/v1/territory/imports/{id}`) while the server reads, checks and applies the file, and whose outcome
//! (the summary, or the rows to fix) it reads at the end. Jobs live in this server process only: they are a view of
//! work in progress, and what an import changes is in the database and the audit log.

use crate::territory::csv::{column_of, RowError};
use crate::territory::ImportSummary;
use serde::Serialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Finished jobs are kept this long for the page that started them to read, and at most `KEPT_FINISHED` of them.
const KEPT_FOR: Duration = Duration::from_secs(3600);
const KEPT_FINISHED: usize = 32;

/// Where an import is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Reading a workbook's rows into the CSV the checks read.
    Reading,
    /// Checking every row, and then the file against what the server holds.
    Checking,
    /// Writing the places, a chunk at a time (a dry run does it too, and rolls it back).
    Applying,
    Done,
    Failed,
}

const PHASES: [Phase; 5] = [Phase::Reading, Phase::Checking, Phase::Applying, Phase::Done, Phase::Failed];

/// How far an import has got, written by the import as it goes and read by whoever polls.
#[derive(Debug)]
pub struct ImportProgress {
    phase: AtomicU8,
    /// Rows of the file read in the current phase (a workbook's rows, then the file's records).
    pub rows_read: AtomicU64,
    /// Places the file holds once checked, and how many of them have been written.
    pub places_total: AtomicU64,
    pub places_applied: AtomicU64,
}

impl Default for ImportProgress {
    fn default() -> Self {
        ImportProgress {
            phase: AtomicU8::new(Phase::Checking as u8),
            rows_read: AtomicU64::new(0),
            places_total: AtomicU64::new(0),
            places_applied: AtomicU64::new(0),
        }
    }
}

impl ImportProgress {
    pub fn phase(&self) -> Phase {
        PHASES[usize::from(self.phase.load(Ordering::Relaxed)).min(PHASES.len() - 1)]
    }

    pub fn enter(&self, phase: Phase) {
        self.phase.store(phase as u8, Ordering::Relaxed);
        if matches!(phase, Phase::Reading | Phase::Checking) {
            self.rows_read.store(0, Ordering::Relaxed);
        }
    }
}

/// A row error as the dashboard tables it: the row (the line of a CSV, the row of a worksheet), the column it
/// is about when its message names one first, and the message.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RowProblem {
    pub line: u64,
    pub column: Option<&'static str>,
    pub message: String,
}

impl From<&RowError> for RowProblem {
    fn from(e: &RowError) -> Self {
        RowProblem { line: e.line, column: column_of(&e.message), message: e.message.clone() }
    }
}

/// Why an import stopped other than for its rows, as the API's error body says it.
#[derive(Debug, Clone, Serialize)]
pub struct JobError {
    pub code: &'static str,
    pub message: String,
}

/// How a job ended.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    Imported { summary: ImportSummary },
    RowsToFix { errors: Vec<RowProblem> },
    Refused { error: JobError },
}

/// One import started from the dashboard.
#[derive(Debug)]
pub struct Job {
    pub id: Uuid,
    pub username: String,
    pub dry_run: bool,
    /// The file's SHA-256, hex: an import of a checked file names it, and is refused if the file differs.
    pub sha256: String,
    /// "csv" or "xlsx".
    pub format: &'static str,
    pub progress: ImportProgress,
    outcome: Mutex<Option<(Outcome, Instant)>>,
}

/// What `GET /api/v1/territory/imports/{id}` answers.
#[derive(Debug, Serialize)]
pub struct JobStatus {
    pub id: Uuid,
    pub dry_run: bool,
    pub sha256: String,
    pub format: &'static str,
    pub phase: Phase,
    pub rows_read: u64,
    pub places_total: u64,
    pub places_applied: u64,
    #[serde(flatten)]
    pub outcome: Option<Outcome>,
}

impl Job {
    pub fn finish(&self, outcome: Outcome) {
        let phase = if matches!(outcome, Outcome::Imported { .. }) { Phase::Done } else { Phase::Failed };
        *self.outcome.lock().expect("job outcome lock") = Some((outcome, Instant::now()));
        self.progress.enter(phase);
    }

    pub fn status(&self) -> JobStatus {
        let p = &self.progress;
        JobStatus {
            id: self.id,
            dry_run: self.dry_run,
            sha256: self.sha256.clone(),
            format: self.format,
            phase: p.phase(),
            rows_read: p.rows_read.load(Ordering::Relaxed),
            places_total: p.places_total.load(Ordering::Relaxed),
            places_applied: p.places_applied.load(Ordering::Relaxed),
            outcome: self.outcome.lock().expect("job outcome lock").as_ref().map(|(o, _)| o.clone()),
        }
    }

    fn finished_at(&self) -> Option<Instant> {
        self.outcome.lock().expect("job outcome lock").as_ref().map(|(_, at)| *at)
    }
}

/// The jobs of this server process, and where imported files and converted workbooks are written (the data dir:
/// on the server's disk, where `/tmp` may be memory).
#[derive(Debug)]
pub struct ImportJobs {
    spool_dir: PathBuf,
    jobs: Mutex<HashMap<Uuid, Arc<Job>>>,
}

impl ImportJobs {
    pub fn new(spool_dir: &Path) -> ImportJobs {
        ImportJobs { spool_dir: spool_dir.to_path_buf(), jobs: Mutex::default() }
    }

    pub fn spool_dir(&self) -> &Path {
        &self.spool_dir
    }

    /// Registers a new job; finished jobs past their time (or beyond the number kept) are forgotten.
    pub fn start(&self, username: &str, dry_run: bool, sha256: String, format: &'static str) -> Arc<Job> {
        let job = Arc::new(Job {
            id: Uuid::new_v4(),
            username: username.to_string(),
            dry_run,
            sha256,
            format,
            progress: ImportProgress::default(),
            outcome: Mutex::new(None),
        });
        let mut jobs = self.jobs.lock().expect("jobs lock");
        jobs.retain(|_, j| j.finished_at().is_none_or(|at| at.elapsed() < KEPT_FOR));
        let mut finished: Vec<(Instant, Uuid)> =
            jobs.values().filter_map(|j| j.finished_at().map(|at| (at, j.id))).collect();
        if finished.len() >= KEPT_FINISHED {
            finished.sort();
            for (_, id) in &finished[..=finished.len() - KEPT_FINISHED] {
                jobs.remove(id);
            }
        }
        jobs.insert(job.id, job.clone());
        job
    }

    pub fn get(&self, id: Uuid) -> Option<Arc<Job>> {
        self.jobs.lock().expect("jobs lock").get(&id).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finished_jobs_are_bounded_and_running_ones_kept() {
        let jobs = ImportJobs::new(Path::new("."));
        let running = jobs.start("office", true, "a".into(), "csv");
        let mut finished = Vec::new();
        for _ in 0..KEPT_FINISHED + 5 {
            let job = jobs.start("office", true, "b".into(), "csv");
            job.finish(Outcome::RowsToFix { errors: vec![] });
            finished.push(job.id);
        }
        assert!(jobs.get(running.id).is_some());
        assert!(jobs.get(finished[0]).is_none());
        assert!(jobs.get(*finished.last().unwrap()).is_some());
        assert_eq!(jobs.get(finished[5]).unwrap().status().phase, Phase::Failed);
    }

    #[test]
    fn columns_are_read_from_messages() {
        let problem = |m: &str| RowProblem::from(&RowError { line: 3, message: m.into() }).column;
        assert_eq!(problem("column kind: \"castle\" is not a place kind"), Some("kind"));
        assert_eq!(problem("grid_code \"G1\": grid_name \"x\" disagrees"), Some("grid_code"));
        assert_eq!(problem("place_id \"P1\" already appears on line 2"), Some("place_id"));
        assert_eq!(problem("found 2 fields but the header has 15"), None);
    }
}
