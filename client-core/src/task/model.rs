//! Urgent dissuasion tasks (预警劝阻): what the office asks for, what the field records (sign-for and outcomes),
//! and how the office evaluates it. Plain types with their consistency rules; the document is in `task_doc`.

use crate::grid::model::{named_enum, UnknownName, MAX_NOTE_BYTES, MAX_TEXT_BYTES};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

named_enum!(
    /// The kind of fraud the warning platform suspects.
    FraudType, "fraud type", {
    Impersonation => ("impersonation", "冒充公检法"),
    Dating => ("dating", "网络交友"),
    Investment => ("investment", "投资理财"),
    Gambling => ("gambling", "网络赌博"),
    Other => ("other", "其他"),
});

named_enum!(
    /// How fast the team must act; tasks are listed in this order.
    Priority, "priority", {
    Urgent => ("urgent", "特急"),
    High => ("high", "紧急"),
    Normal => ("normal", "一般"),
});

named_enum!(
    /// How the volunteer tried to dissuade the person.
    ContactMethod, "method", {
    FaceToFace => ("face-to-face", "上门"),
    Phone => ("phone", "电话"),
    Sms => ("sms", "短信"),
});

named_enum!(
    /// What a sign-for entry records: the task reached a device (签收), or a volunteer opened it.
    SignKind, "sign-for kind", {
    Received => ("received", "签收"),
    Opened => ("opened", "查看"),
});

named_enum!(
    /// The office's evaluation (评价). `effective` and `ineffective` close the task; `follow-up` sends it back.
    Evaluation, "evaluation", {
    Effective => ("effective", "有效"),
    Ineffective => ("ineffective", "无效"),
    FollowUp => ("follow-up", "需跟进"),
});

impl Evaluation {
    pub fn closes(self) -> bool {
        self != Evaluation::FollowUp
    }
}

/// Longest instruction text of a task, in bytes.
pub const MAX_INSTRUCTIONS_BYTES: usize = 2000;
/// Longest phone number accepted, in bytes.
pub const MAX_PHONE_BYTES: usize = 32;

/// Who to reach: a place of the registry, or an address and a person's label for someone not in it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Target {
    /// The person, as the warning platform names them (e.g. "王某, 62").
    pub label: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub place_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
}

/// The office's instruction, as written into the task document when it is created.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskInfo {
    pub id: Uuid,
    pub fraud_type: FraudType,
    pub priority: Priority,
    pub created_at: DateTime<Utc>,
    pub deadline: DateTime<Utc>,
    pub instructions: String,
    pub target: Target,
    /// Set when the office asks for a follow-up: its comment and when it asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub follow_up: Option<FollowUp>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FollowUp {
    pub at: DateTime<Utc>,
    pub comment: String,
}

impl TaskInfo {
    /// Checks what the office asks for; the message says what to fix.
    pub fn check(&self) -> Result<(), String> {
        let t = &self.target;
        if t.label.trim().is_empty() {
            return Err("the target needs a label naming the person (e.g. \"王某, 62\")".into());
        }
        if t.place_id.is_none() && t.address.as_deref().is_none_or(|a| a.trim().is_empty()) {
            return Err("a target outside the registry needs an address".into());
        }
        for (what, value) in
            [("label", Some(&t.label)), ("address", t.address.as_ref()), ("place", t.place_id.as_ref())]
        {
            if value.is_some_and(|v| v.len() > MAX_TEXT_BYTES) {
                return Err(format!("the target's {what} is longer than {MAX_TEXT_BYTES} bytes"));
            }
        }
        if let Some(phone) = &t.phone {
            let ok = !phone.is_empty()
                && phone.len() <= MAX_PHONE_BYTES
                && phone.chars().all(|c| c.is_ascii_digit() || matches!(c, '+' | '-' | ' '));
            if !ok {
                return Err(format!("phone {phone:?} is not a phone number (digits, '+', '-' and spaces)"));
            }
        }
        if self.instructions.len() > MAX_INSTRUCTIONS_BYTES {
            return Err(format!("the instructions are longer than {MAX_INSTRUCTIONS_BYTES} bytes"));
        }
        if self.deadline <= self.created_at {
            return Err("the deadline must be after the task is created".into());
        }
        Ok(())
    }
}

/// A sign-for entry: written by a device when it first receives the task, and when a volunteer first opens it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sign {
    pub id: Uuid,
    pub kind: SignKind,
    pub volunteer: String,
    pub device: String,
    pub at: DateTime<Utc>,
}

/// What the field did (劝阻) and fed back (反馈). A task may have several: a failed call, then a visit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskOutcome {
    pub id: Uuid,
    pub volunteer: String,
    pub device: String,
    pub at: DateTime<Utc>,
    pub method: ContactMethod,
    /// The person was reached (spoken to, or the message confirmed as read).
    pub reached: bool,
    pub dissuaded: bool,
    /// Money had already been lost when the person was reached.
    pub money_lost: bool,
    /// The amount lost, in fen (1/100 yuan), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount_fen: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feedback: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gps: Option<(f64, f64)>,
}

impl TaskOutcome {
    /// The rules an outcome follows, on the device before it is recorded and on the server before it is stored.
    pub fn check(&self) -> Result<(), String> {
        if self.dissuaded && !self.reached {
            return Err("a person who was not reached cannot have been dissuaded".into());
        }
        if self.money_lost && !self.reached {
            return Err("whether money was lost is known only when the person was reached".into());
        }
        match self.amount_fen {
            Some(_) if !self.money_lost => return Err("an amount lost needs money lost: yes".into()),
            Some(a) if a < 0 => return Err("the amount lost cannot be negative".into()),
            _ => {}
        }
        if self.feedback.as_ref().is_some_and(|f| f.len() > MAX_NOTE_BYTES) {
            return Err(format!("the feedback is longer than {MAX_NOTE_BYTES} bytes"));
        }
        if let Some((lat, lon)) = self.gps {
            if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
                return Err(format!("gps {lat},{lon} is outside the valid range"));
            }
        }
        Ok(())
    }
}

/// Parses an amount of yuan such as `5000` or `1234.5` into fen, exactly (no floating point).
pub fn parse_yuan(s: &str) -> Result<i64, String> {
    let bad = || format!("{s:?} is not an amount of yuan such as 5000 or 1234.50");
    let (whole, frac) = s.trim().split_once('.').unwrap_or((s.trim(), ""));
    if whole.is_empty() || !whole.chars().all(|c| c.is_ascii_digit()) || frac.len() > 2 {
        return Err(bad());
    }
    if !frac.chars().all(|c| c.is_ascii_digit()) {
        return Err(bad());
    }
    let whole: i64 = whole.parse().map_err(|_| bad())?;
    let frac: i64 = format!("{frac:0<2}").parse().map_err(|_| bad())?;
    whole.checked_mul(100).and_then(|w| w.checked_add(frac)).ok_or_else(bad)
}

/// Fen as a yuan amount with two decimals.
pub fn yuan_text(fen: i64) -> String {
    format!("{}.{:02}", fen / 100, fen % 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome() -> TaskOutcome {
        TaskOutcome {
            id: Uuid::now_v7(),
            volunteer: "amy".into(),
            device: "d1".into(),
            at: Utc::now(),
            method: ContactMethod::FaceToFace,
            reached: true,
            dissuaded: true,
            money_lost: false,
            amount_fen: None,
            feedback: None,
            gps: None,
        }
    }

    #[test]
    fn outcomes_must_be_consistent() {
        assert!(outcome().check().is_ok());
        let not_reached = TaskOutcome { reached: false, ..outcome() };
        assert!(not_reached.check().unwrap_err().contains("not reached"));
        let amount_without_loss = TaskOutcome { amount_fen: Some(100), ..outcome() };
        assert!(amount_without_loss.check().unwrap_err().contains("money lost"));
        let lost = TaskOutcome { money_lost: true, amount_fen: Some(500_000), ..outcome() };
        assert!(lost.check().is_ok());
    }

    #[test]
    fn yuan_parse_exactly() {
        assert_eq!(parse_yuan("5000"), Ok(500_000));
        assert_eq!(parse_yuan("12.5"), Ok(1250));
        assert_eq!(parse_yuan("0.07"), Ok(7));
        for bad in ["", "-3", "1.234", "1e3", "abc", ".5"] {
            assert!(parse_yuan(bad).is_err(), "{bad}");
        }
        assert_eq!(yuan_text(1250), "12.50");
        assert_eq!("冒充公检法".parse::<FraudType>(), Ok(FraudType::Impersonation));
        assert_eq!("follow-up".parse::<Evaluation>(), Ok(Evaluation::FollowUp));
    }
}
