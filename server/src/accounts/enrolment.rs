//! One-time enrolment codes: the office (any volunteer or lead) or a lead (their own team's) issues a code per
//! person, printed on an enrolment sheet as a QR code; the phone enrols with the code instead of a username and
//! password. A code is bound to its person, expires within hours, works once, can be revoked, and only its digest
//! is stored. Issuing a new code for a person revokes their earlier unused ones.

use crate::accounts::people::{self, UserRecord};
use crate::accounts::tokens::{token_digest, Role};
use crate::refusal::Refusal;
use crate::store::db::{now_ms, Db};
use crate::store::enrolment_codes::{self, NewCode};
use crate::store::StoreResult;
use rand::Rng;
use serde::{Deserialize, Serialize};

/// How long a code works when the issuer does not say.
pub const DEFAULT_HOURS: i64 = 24;
/// The longest a code may work: a printed sheet left lying about stops being a key within days.
pub const MAX_HOURS: i64 = 72;
/// The most codes one request issues (a large team's sheet).
pub const MAX_PER_REQUEST: usize = 500;

/// Crockford's base32: no I, L, O or U, so a code read aloud or typed from paper is not mistaken.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// 20 characters of 5 bits: 100 random bits, beyond guessing even without the login limits.
const CODE_CHARS: usize = 20;

/// A code as issued: the only time the code itself is seen.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct IssuedCode {
    pub id: String,
    pub username: String,
    pub team: Option<String>,
    /// The code as printed: four groups of five characters.
    pub code: String,
    pub expires_at: i64,
}

/// A code as listed (never the code itself).
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct CodeInfo {
    pub id: String,
    pub username: String,
    pub team: Option<String>,
    pub issued_by: String,
    pub issued_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
    pub device_id: Option<String>,
    pub revoked_at: Option<i64>,
    /// `unused`, `used`, `revoked` or `expired`, as of the listing.
    pub state: String,
}

/// A new random code, formatted for print.
fn new_code() -> String {
    let mut rng = rand::rngs::OsRng;
    let chars: Vec<char> = (0..CODE_CHARS).map(|_| ALPHABET[rng.gen_range(0..32)] as char).collect();
    chars.chunks(5).map(|group| group.iter().collect::<String>()).collect::<Vec<_>>().join("-")
}

/// A code as typed or scanned, in the one form its digest is taken of: case, dashes and spaces do not matter,
/// and O, I and L read as 0, 1 and 1 (as Crockford's base32 says).
pub fn normalise(code: &str) -> String {
    code.chars()
        .filter(|c| !matches!(c, '-' | ' ' | '\t'))
        .map(|c| match c.to_ascii_uppercase() {
            'O' => '0',
            'I' | 'L' => '1',
            other => other,
        })
        .collect()
}

fn code_digest(code: &str) -> String {
    token_digest(&normalise(code))
}

/// Issues a code for each named person, valid for `hours`, in one transaction: all or none.
pub async fn issue(db: &Db, issuer: &str, users: &[UserRecord], hours: i64) -> Result<Vec<IssuedCode>, Refusal> {
    if !(1..=MAX_HOURS).contains(&hours) {
        return Err(Refusal::invalid(format!("hours must be between 1 and {MAX_HOURS}, not {hours}")));
    }
    if users.is_empty() {
        return Err(Refusal::invalid("name at least one volunteer (or a team with members) to issue codes for"));
    }
    if users.len() > MAX_PER_REQUEST {
        return Err(Refusal::invalid(format!("at most {MAX_PER_REQUEST} codes at a time; issue them team by team")));
    }
    for u in users {
        if u.disabled {
            return Err(Refusal::invalid(format!("{} is disabled: enable the account first", u.username)));
        }
        if !matches!(u.role, Role::Volunteer | Role::Lead) {
            return Err(Refusal::invalid(format!(
                "{} is {}: enrolment codes are for volunteers' and leads' phones",
                u.username,
                u.role.as_str()
            )));
        }
    }
    let now = now_ms();
    let expires_at = now + hours * 3_600_000;
    let (_gate, mut tx) = db.begin_write().await?;
    let mut issued = Vec::with_capacity(users.len());
    for u in users {
        let code = new_code();
        let id = uuid::Uuid::now_v7().to_string();
        let digest = code_digest(&code);
        let row =
            NewCode { id: &id, code_hash: &digest, user_id: &u.id, issued_by: issuer, issued_at: now, expires_at };
        enrolment_codes::insert_replacing(&mut tx, row).await?;
        issued.push(IssuedCode { id, username: u.username.clone(), team: u.team.clone(), code, expires_at });
    }
    tx.commit().await?;
    Ok(issued)
}

/// The people of a team a sheet is printed for: its active volunteers and leads, by username.
pub async fn enrollable_members(db: &Db, team: &str) -> Result<Vec<UserRecord>, Refusal> {
    people::team_must_exist(db, team).await?;
    let mut users = Vec::new();
    for username in enrolment_codes::enrollable_members(db, team).await? {
        users.extend(people::find_user(db, &username).await?);
    }
    Ok(users)
}

/// Why a code enrols nothing, each with a code of its own so that the field app can say it in the volunteer's
/// language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeProblem {
    Unknown,
    Used,
    Withdrawn,
    Expired,
    AccountDisabled,
}

impl CodeProblem {
    pub fn code(self) -> &'static str {
        match self {
            CodeProblem::Unknown => "enrolment_code_unknown",
            CodeProblem::Used => "enrolment_code_used",
            CodeProblem::Withdrawn => "enrolment_code_withdrawn",
            CodeProblem::Expired => "enrolment_code_expired",
            CodeProblem::AccountDisabled => "account_disabled",
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            CodeProblem::Unknown => "this enrolment code is not known: check it, or ask for a new sheet",
            CodeProblem::Used => "this enrolment code was used already: ask for a new one",
            CodeProblem::Withdrawn => "this enrolment code was withdrawn: use the newest sheet, or ask for one",
            CodeProblem::Expired => "this enrolment code has expired: ask the office or your lead for a new one",
            CodeProblem::AccountDisabled => "this account is disabled; ask the office",
        }
    }
}

/// The person a code enrols and the code's id, if the code is one that still works, or why it does not. The
/// code is claimed only with the device that uses it (`people::enrol_device_claiming`).
pub async fn redeemable(db: &Db, code: &str) -> Result<Result<(String, UserRecord), CodeProblem>, Refusal> {
    let Some((id, username, expires_at, used_at, revoked_at)) =
        enrolment_codes::by_hash(db, &code_digest(code)).await?
    else {
        return Ok(Err(CodeProblem::Unknown));
    };
    let problem = if used_at.is_some() {
        Some(CodeProblem::Used)
    } else if revoked_at.is_some() {
        Some(CodeProblem::Withdrawn)
    } else if expires_at <= now_ms() {
        Some(CodeProblem::Expired)
    } else {
        None
    };
    if let Some(problem) = problem {
        return Ok(Err(problem));
    }
    match people::find_user(db, &username).await? {
        None => Ok(Err(CodeProblem::Unknown)),
        Some(user) if user.disabled => Ok(Err(CodeProblem::AccountDisabled)),
        Some(user) => Ok(Ok((id, user))),
    }
}

/// Codes issued in the last `days` days, of everyone or of one team, newest first.
pub async fn list(db: &Db, team: Option<&str>, days: i64) -> StoreResult<Vec<CodeInfo>> {
    let now = now_ms();
    let rows = enrolment_codes::list(db, team.unwrap_or(""), now - days * 86_400_000).await?;
    Ok(rows
        .into_iter()
        .map(|(id, username, team, issued_by, issued_at, expires_at, used_at, device_id, revoked_at)| {
            let state = if used_at.is_some() {
                "used"
            } else if revoked_at.is_some() {
                "revoked"
            } else if expires_at <= now {
                "expired"
            } else {
                "unused"
            };
            CodeInfo {
                id,
                username,
                team,
                issued_by,
                issued_at,
                expires_at,
                used_at,
                device_id,
                revoked_at,
                state: state.into(),
            }
        })
        .collect())
}

/// The team of a code's person: `None` if there is no such code.
pub async fn owner_team(db: &Db, id: &str) -> StoreResult<Option<Option<String>>> {
    enrolment_codes::owner_team(db, id).await
}

/// Revokes an unused code; false if it was used or revoked already.
pub async fn revoke(db: &Db, id: &str) -> StoreResult<bool> {
    enrolment_codes::revoke(db, id, now_ms()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_four_groups_of_five_from_the_alphabet_and_differ() {
        let a = new_code();
        let b = new_code();
        assert_ne!(a, b);
        assert_eq!(a.len(), 23);
        let groups: Vec<&str> = a.split('-').collect();
        assert_eq!(groups.len(), 4);
        assert!(groups.iter().all(|g| g.len() == 5 && g.bytes().all(|c| ALPHABET.contains(&c))));
    }

    #[test]
    fn a_code_typed_loosely_has_the_printed_codes_digest() {
        let printed = "0A1B2-C3D4E-F5G6H-J7K8M";
        assert_eq!(code_digest(printed), code_digest("oa1b2 c3d4e f5g6h j7k8m"));
        assert_eq!(code_digest(printed), code_digest("OA1B2C3D4EF5G6HJ7K8M"));
        assert_eq!(normalise("l1-I1"), "1111");
        assert_ne!(code_digest(printed), code_digest("0A1B2-C3D4E-F5G6H-J7K8N"));
    }
}
