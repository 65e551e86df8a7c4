//! The client profile directory: the office session, the enrolled device, and the device's grids and urgent tasks.

use anyhow::{Context, Result};
use client_core::store::{read_json, write_json_atomic, GridStore};
use client_core::task::store::TaskStore;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// An office, lead or viewer login.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    pub server: String,
    pub username: String,
    pub role: String,
    pub token: String,
    pub expires_at: i64,
    /// Renews `token` when it expires; revoked by the office or by `doorstep logout`.
    #[serde(default)]
    pub refresh_token: Option<String>,
}

/// This device's enrolment.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Device {
    pub server: String,
    pub username: String,
    pub team: Option<String>,
    pub device_id: String,
    /// Automerge actor id (hex) assigned by the server; every change this device writes carries it.
    pub actor: String,
    pub token: String,
    pub last_sync: Option<chrono::DateTime<chrono::Utc>>,
    /// The account's role; a lead's device can serve as the team's hub.
    #[serde(default)]
    pub role: Option<String>,
    /// This device's Ed25519 signing key (hex): it signs every change it writes, so that they can travel
    /// through a hub. Profiles enrolled before signing have none and sync only with the server.
    #[serde(default)]
    pub signing_key: Option<String>,
    /// The server's public key (hex): a hub checks device tokens and the server's attested heads with it.
    #[serde(default)]
    pub server_key: Option<String>,
    /// The installation's Doorstep CA certificate (PEM), saved at enrolment: this device trusts HTTPS hubs (and
    /// servers) whose certificate it signed, besides the public certificate authorities.
    #[serde(default)]
    pub ca_certificate: Option<String>,
}

impl Device {
    pub fn key_pair(&self) -> Result<Option<client_core::sign::KeyPair>> {
        self.signing_key
            .as_deref()
            .map(client_core::sign::KeyPair::from_hex)
            .transpose()
            .context("the profile's signing key is damaged; enrol again with `doorstep field login`")
    }
}

pub struct Profile {
    dir: PathBuf,
}

impl Profile {
    pub fn new(dir: PathBuf) -> Profile {
        Profile { dir }
    }

    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    /// A client for the device's enrolment server, or for `via` (a team hub): it trusts the public certificate
    /// authorities, and the Doorstep CA for hubs of the device's team that the server has not withdrawn.
    pub fn api(&self, device: &Device, via: Option<&str>) -> Result<crate::api::Api> {
        let tls = match &device.ca_certificate {
            Some(ca) => {
                Some(crate::hub::trust::client_config(ca, crate::hub::trust::HubCheck::for_device(self, device))?)
            }
            None => None,
        };
        crate::api::Api::trusting(via.unwrap_or(&device.server), Some(device.token.clone()), tls)
    }

    /// The server's latest signed list of the team's withdrawn hubs this device received (`hub_trust`).
    pub fn hub_trust(&self) -> Result<Option<client_core::hub_certs::SignedHubTrust>> {
        Ok(read_json(&self.dir.join("hub-trust.json"))?)
    }

    pub fn save_hub_trust(&self, trust: &client_core::hub_certs::SignedHubTrust) -> Result<()> {
        self.ensure_dir()?;
        Ok(write_json_atomic(&self.dir.join("hub-trust.json"), trust)?)
    }

    /// The profile's folder, made for its owner only: it holds the device's key and tokens.
    fn ensure_dir(&self) -> Result<()> {
        client_core::private_files::create_dir_all(&self.dir)
            .with_context(|| format!("cannot create profile {}", self.dir.display()))
    }

    /// Warnings for the profile's folder and files that other users of the machine may read.
    pub fn loosened(&self) -> Vec<String> {
        client_core::private_files::loosened(&self.dir)
    }

    pub fn session(&self) -> Result<Session> {
        read_json::<Session>(&self.dir.join("session.json"))?.with_context(|| {
            format!(
                "not logged in (profile {}); run `doorstep login --server URL --username U --password-stdin`",
                self.dir.display()
            )
        })
    }

    pub fn save_session(&self, s: &Session) -> Result<()> {
        self.ensure_dir()?;
        Ok(write_json_atomic(&self.dir.join("session.json"), s)?)
    }

    pub fn forget_session(&self) -> Result<()> {
        match std::fs::remove_file(self.dir.join("session.json")) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }

    pub fn device(&self) -> Result<Device> {
        read_json::<Device>(&self.dir.join("device.json"))?.with_context(|| {
            format!(
                "this profile ({}) has no enrolled device; run `doorstep field login --server URL --username U --password-stdin`",
                self.dir.display()
            )
        })
    }

    pub fn try_device(&self) -> Result<Option<Device>> {
        Ok(read_json::<Device>(&self.dir.join("device.json"))?)
    }

    pub fn save_device(&self, d: &Device) -> Result<()> {
        self.ensure_dir()?;
        Ok(write_json_atomic(&self.dir.join("device.json"), d)?)
    }

    /// Visits, found places and corrections recorded under an earlier enrolment of this profile, waiting to be recorded again under the
    /// current one (a new enrolment has a new actor id, and the server accepts only the current one's changes).
    pub fn carry_over(&self) -> Result<Vec<CarriedRecord>> {
        Ok(read_json(&self.dir.join("carry-over.json"))?.unwrap_or_default())
    }

    pub fn save_carry_over(&self, records: &[CarriedRecord]) -> Result<()> {
        let path = self.dir.join("carry-over.json");
        if records.is_empty() {
            return match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
                _ => Ok(()),
            };
        }
        self.ensure_dir()?;
        Ok(write_json_atomic(&path, &records)?)
    }

    /// Task sign-fors and outcomes recorded under an earlier enrolment, waiting to be recorded again under the
    /// current one once their task is back on the device.
    pub fn task_carry_over(&self) -> Result<Vec<CarriedTaskEntry>> {
        Ok(read_json(&self.dir.join("task-carry-over.json"))?.unwrap_or_default())
    }

    pub fn save_task_carry_over(&self, entries: &[CarriedTaskEntry]) -> Result<()> {
        let path = self.dir.join("task-carry-over.json");
        if entries.is_empty() {
            return match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
                _ => Ok(()),
            };
        }
        self.ensure_dir()?;
        Ok(write_json_atomic(&path, &entries)?)
    }

    /// Tasks the server told this (lead's) profile are closed, once their files were deleted: a hub answers
    /// `closed` from them to devices that still hold such a task.
    pub fn closed_tasks(&self) -> Result<Vec<ClosedTask>> {
        Ok(read_json(&self.dir.join("closed-tasks.json"))?.unwrap_or_default())
    }

    /// Adds closings to those remembered, and forgets those older than `CLOSED_TASKS_KEPT_DAYS`.
    pub fn remember_closed_tasks(&self, new: Vec<ClosedTask>) -> Result<()> {
        let mut all = self.closed_tasks()?;
        let (held, adding) = (all.len(), !new.is_empty());
        all.retain(|c| !new.iter().any(|n| n.task == c.task));
        all.extend(new);
        let oldest = chrono::Utc::now() - chrono::Duration::days(CLOSED_TASKS_KEPT_DAYS);
        all.retain(|c| c.learned_at > oldest);
        if !adding && all.len() == held {
            return Ok(());
        }
        self.ensure_dir()?;
        Ok(write_json_atomic(&self.dir.join("closed-tasks.json"), &all)?)
    }

    /// The team roster a hub keeps (devices, their keys, which are revoked).
    pub fn roster(&self) -> Result<Option<client_core::roster::Roster>> {
        Ok(read_json(&self.dir.join("roster.json"))?)
    }

    pub fn save_roster(&self, roster: &client_core::roster::Roster) -> Result<()> {
        self.ensure_dir()?;
        Ok(write_json_atomic(&self.dir.join("roster.json"), roster)?)
    }

    /// The hub's HTTPS private key and certificate, one PEM file readable by its owner only
    /// (`doorstep hub certificate`).
    pub fn hub_tls_file(&self) -> PathBuf {
        self.dir.join("hub-tls.pem")
    }

    pub fn save_hub_tls(&self, key_pem: &str, certificate_pem: &str) -> Result<()> {
        self.ensure_dir()?;
        write_private_atomic(&self.hub_tls_file(), format!("{key_pem}{certificate_pem}").as_bytes())
    }

    /// Opens the device's grid store, waiting for any other doorstep process using this profile.
    pub fn grids(&self) -> Result<GridStore> {
        self.ensure_dir()?;
        Ok(GridStore::open(&self.dir.join("grids"))?)
    }

    /// The folder of the documents of every further kind (`client_core::docs`), one folder per kind inside.
    pub fn docs_dir(&self) -> Result<PathBuf> {
        self.ensure_dir()?;
        Ok(self.dir.join("docs"))
    }

    /// Opens the device's urgent tasks (one folder, its own lock). Commands that need both open the grids first.
    pub fn tasks(&self) -> Result<TaskStore> {
        self.ensure_dir()?;
        Ok(TaskStore::open(&self.dir.join("tasks"))?)
    }
}

/// A record of the device's own set aside at re-enrolment, to be written again under the new one. Stored as
/// `{"grid": …, "visit": {…}}` (or `"found_place"`, `"correction"`), so files written when only visits were
/// carried still read.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CarriedRecord {
    pub grid: String,
    #[serde(flatten)]
    pub record: Carried,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Carried {
    FoundPlace(client_core::grid::found::FoundPlace),
    Correction(client_core::grid::found::Correction),
    Visit(client_core::grid::model::Visit),
}

impl Carried {
    /// Found places are written first, so carried visits to them and corrections of them find their place.
    pub fn order(&self) -> u8 {
        match self {
            Carried::FoundPlace(_) => 0,
            Carried::Correction(_) => 1,
            Carried::Visit(_) => 2,
        }
    }
}

/// A task's sign-for or outcome set aside at re-enrolment.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CarriedTaskEntry {
    pub task: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sign: Option<client_core::task::model::Sign>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<client_core::task::model::TaskOutcome>,
    /// The server's latest signed statement of the task that the earlier enrolment held: it shows the server that
    /// this profile held the task, so that the server sends it again even once closed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attestation: Option<client_core::protocol::Attestation>,
}

/// How long a lead's profile remembers a closed task for devices that sync only through its hub. A device that
/// brings the task to the hub later keeps it until it syncs with the server.
pub const CLOSED_TASKS_KEPT_DAYS: i64 = 90;

/// A closed task as a hub remembers it: no personal data, only the id and the server's signed list of every
/// change of the task, against which a device checks that it may delete its copy.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClosedTask {
    pub task: String,
    pub learned_at: chrono::DateTime<chrono::Utc>,
    pub attestation: client_core::protocol::Attestation,
}

/// Writes a file only its owner may read, so that readers see the old content or the new, even after a crash.
fn write_private_atomic(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    // A leftover temporary file would keep its permissions; the mode below applies only to a new one.
    let _ = std::fs::remove_file(&tmp);
    let mut file = client_core::private_files::options()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    std::fs::File::open(path.parent().unwrap_or(std::path::Path::new(".")))?.sync_all()?;
    Ok(())
}

/// `--profile`, else `DOORSTEP_PROFILE` (both handled by clap), else `~/.doorstep`.
pub fn default_dir() -> PathBuf {
    std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(".")).join(".doorstep")
}
