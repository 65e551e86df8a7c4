//! Bulletins (通报): what the office publishes to every volunteer's phone — new fraud methods, reminders, material
//! templates, talking points for the door — with attachments, and the read receipts phones send back. Plain types
//! and their rules; the synced document is `doc`.

pub mod doc;

use crate::grid::model::{named_enum, UnknownName};
use crate::task::model::FraudType;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

named_enum!(
    /// What a bulletin is for.
    BulletinKind, "bulletin kind", {
    FraudMethod => ("fraud_method", "诈骗手法"),
    Reminder => ("reminder", "提醒"),
    Template => ("template", "宣传资料模板"),
    TalkingPoints => ("talking_points", "入户宣讲要点"),
});

named_enum!(
    /// An urgent bulletin is shown first on the phone until it is read.
    BulletinPriority, "bulletin priority", {
    Normal => ("normal", "一般"),
    Urgent => ("urgent", "紧急"),
});

/// Longest title, in bytes.
pub const MAX_TITLE_BYTES: usize = 300;
/// Longest body, in bytes (about 6,000 Chinese characters).
pub const MAX_BODY_BYTES: usize = 20_000;
/// Attachments of one bulletin, at most.
pub const MAX_ATTACHMENTS: usize = 8;
/// Largest attachment, in bytes.
pub const MAX_ATTACHMENT_BYTES: u64 = 10 * 1024 * 1024;
/// Longest attachment file name, in bytes.
pub const MAX_NAME_BYTES: usize = 200;
/// The content types an attachment may have, as told from its bytes.
pub const ATTACHMENT_TYPES: &[&str] = &["image/jpeg", "image/png", "image/webp", "image/gif", "application/pdf"];

/// A file attached to a bulletin, named by the SHA-256 of its bytes (the content-addressed store's key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    pub sha256: String,
    pub name: String,
    #[serde(rename = "type")]
    pub content_type: String,
    pub size: u64,
}

/// A bulletin's contents as its current edition says them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    pub title: String,
    pub body: String,
    pub kind: BulletinKind,
    /// The task fraud type it concerns, if any.
    pub fraud_type: Option<FraudType>,
    pub priority: BulletinPriority,
    /// 1 when published, one more at each correction.
    pub edition: i64,
    pub published_at: i64,
    /// After this moment (ms) the bulletin is withdrawn; `None`: it stays until withdrawn.
    pub expires_at: Option<i64>,
    pub attachments: Vec<Attachment>,
}

/// A volunteer's read receipt (已阅): when they marked which edition read, on which device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// The entry's key in the document (a UUID).
    pub key: String,
    pub volunteer: String,
    pub device: String,
    pub read_at: i64,
    pub edition: i64,
}

/// Whether `s` names a SHA-256 as Doorstep writes it: 64 lowercase hex digits.
pub fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl Notice {
    /// The rules every edition keeps; the message says what to change.
    pub fn check(&self) -> Result<(), String> {
        let title = self.title.trim();
        if title.is_empty() {
            return Err("a bulletin needs a title".into());
        }
        if self.title.len() > MAX_TITLE_BYTES {
            return Err(format!("the title is longer than {MAX_TITLE_BYTES} bytes; shorten it"));
        }
        if self.body.trim().is_empty() {
            return Err("a bulletin needs a body".into());
        }
        if self.body.len() > MAX_BODY_BYTES {
            return Err(format!("the body is longer than {MAX_BODY_BYTES} bytes; shorten it or attach a file"));
        }
        if self.edition < 1 {
            return Err("an edition is numbered from 1".into());
        }
        if self.expires_at.is_some_and(|at| at <= self.published_at) {
            return Err("the expiry must be after the publication".into());
        }
        if self.attachments.len() > MAX_ATTACHMENTS {
            return Err(format!("at most {MAX_ATTACHMENTS} attachments per bulletin"));
        }
        for a in &self.attachments {
            if !is_sha256_hex(&a.sha256) {
                return Err(format!("attachment {:?}: {:?} is not a SHA-256", a.name, a.sha256));
            }
            if a.name.trim().is_empty() || a.name.len() > MAX_NAME_BYTES || a.name.chars().any(char::is_control) {
                return Err(format!("attachment name {:?} is empty, too long or has control characters", a.name));
            }
            if !ATTACHMENT_TYPES.contains(&a.content_type.as_str()) {
                return Err(format!("attachment {:?}: type {} is not accepted", a.name, a.content_type));
            }
            if a.size == 0 || a.size > MAX_ATTACHMENT_BYTES {
                return Err(format!("attachment {:?}: {} bytes is outside 1 … {MAX_ATTACHMENT_BYTES}", a.name, a.size));
            }
        }
        Ok(())
    }

    /// Whether the bulletin has expired at `now` (ms).
    pub fn expired(&self, now: i64) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }
}
