//! One-time enrolment codes: the office (for anyone) or a lead (for their own team) issues a code per person, or
//! one code a whole team shares for a number of phones, printed on an enrolment sheet as QR codes; the phone
//! enrols with the code instead of a username and password (with a team's code, the volunteer taps their name).
//! A code is bound to its person or team, expires within hours, works once (a team's: its number of times), can
//! be revoked, and only its digest is stored. A new code for a person (or a team's new shared code) revokes the
//! earlier ones that had uses left.

use crate::accounts::people::{self, UserRecord};
use crate::accounts::tokens::{token_digest, Role};
use crate::refusal::Refusal;
use crate::store::db::{now_ms, Db};
use crate::store::enrolment_codes::{self, Holder, NewCode};
use crate::store::StoreResult;
use rand::Rng;
use serde::{Deserialize, Serialize};

/// How long a code works when the issuer does not say.
pub const DEFAULT_HOURS: i64 = 24;
/// The longest a code may work: a printed sheet left lying about stops being a key within days.
pub const MAX_HOURS: i64 = 72;
/// The most codes one request issues (a large team's sheet), and the most phones a team's shared code enrols.
pub const MAX_PER_REQUEST: usize = 500;

/// Crockford's base32: no I, L, O or U, so a code read aloud or typed from paper is not mistaken.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// 20 characters of 5 bits: 100 random bits, beyond guessing even without the login limits.
const CODE_CHARS: usize = 20;
/// Who a team's shared code enrols: its volunteers (a lead's phone serves as the team's hub, so it has a code of
/// its own).
const SHARED_CODE_ROLES: &[&str] = &["volunteer"];

/// A code as issued: the only time the code itself is seen.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct IssuedCode {
    pub id: String,
    /// A person's code: that person; a team's shared code: none.
    pub username: Option<String>,
    pub team: Option<String>,
    /// How many phones it may enrol.
    pub uses: i64,
    /// The code as printed: four groups of five characters.
    pub code: String,
    pub expires_at: i64,
}

/// A code as listed (never the code itself).
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct CodeInfo {
    pub id: String,
    pub username: Option<String>,
    pub team: Option<String>,
    pub uses: i64,
    pub used: i64,
    pub issued_by: String,
    pub issued_at: i64,
    pub expires_at: i64,
    /// The last phone enrolled with it.
    pub used_at: Option<i64>,
    pub device_id: Option<String>,
    pub revoked_at: Option<i64>,
    /// `unused` (uses left), `used` (none left), `revoked` or `expired`, as of the listing.
    pub state: String,
}

/// What a code is for, as the phone is told before it enrols: a person (to confirm), or a team (to choose a
/// name from its volunteers).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct CodeLookup {
    /// `person` or `team`.
    pub kind: String,
    pub team: Option<String>,
    pub members: Vec<String>,
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

fn checked_hours(hours: i64) -> Result<i64, Refusal> {
    if !(1..=MAX_HOURS).contains(&hours) {
        return Err(Refusal::invalid(format!("hours must be between 1 and {MAX_HOURS}, not {hours}")));
    }
    Ok(now_ms() + hours * 3_600_000)
}

/// Issues a code for each named person, valid for `hours`, in one transaction: all or none.
pub async fn issue(db: &Db, issuer: &str, users: &[UserRecord], hours: i64) -> Result<Vec<IssuedCode>, Refusal> {
    let expires_at = checked_hours(hours)?;
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
    let (_gate, mut tx) = db.begin_write().await?;
    let mut issued = Vec::with_capacity(users.len());
    for u in users {
        let code = new_code();
        let id = uuid::Uuid::now_v7().to_string();
        let digest = code_digest(&code);
        let holder = Holder::Person(&u.id);
        let row = NewCode { id: &id, code_hash: &digest, holder, issued_by: issuer, issued_at: now, expires_at };
        enrolment_codes::insert_replacing(&mut tx, row).await?;
        let (username, team) = (Some(u.username.clone()), u.team.clone());
        issued.push(IssuedCode { id, username, team, uses: 1, code, expires_at });
    }
    tx.commit().await?;
    Ok(issued)
}

/// Issues one code the team's volunteers share, for up to `uses` phones, valid for `hours`.
pub async fn issue_shared(db: &Db, issuer: &str, team: &str, uses: i64, hours: i64) -> Result<IssuedCode, Refusal> {
    let expires_at = checked_hours(hours)?;
    if !(1..=MAX_PER_REQUEST as i64).contains(&uses) {
        return Err(Refusal::invalid(format!("uses must be between 1 and {MAX_PER_REQUEST}, not {uses}")));
    }
    people::team_must_exist(db, team).await?;
    if enrolment_codes::active_members(db, team, SHARED_CODE_ROLES).await?.is_empty() {
        return Err(Refusal::invalid(format!("team {team} has no active volunteers to enrol")));
    }
    let (code, id) = (new_code(), uuid::Uuid::now_v7().to_string());
    let digest = code_digest(&code);
    let (_gate, mut tx) = db.begin_write().await?;
    let holder = Holder::Team { team, uses };
    let now = now_ms();
    let row = NewCode { id: &id, code_hash: &digest, holder, issued_by: issuer, issued_at: now, expires_at };
    enrolment_codes::insert_replacing(&mut tx, row).await?;
    tx.commit().await?;
    Ok(IssuedCode { id, username: None, team: Some(team.to_string()), uses, code, expires_at })
}

/// The people of a team a sheet of personal codes is printed for: its active volunteers and leads.
pub async fn enrollable_members(db: &Db, team: &str) -> Result<Vec<UserRecord>, Refusal> {
    people::team_must_exist(db, team).await?;
    let mut users = Vec::new();
    for username in enrolment_codes::active_members(db, team, &["volunteer", "lead"]).await? {
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
    /// A team's code, and no name chosen.
    ChooseMember,
    /// A name that the code does not enrol (not a volunteer of its team, or not its person).
    NotAMember,
}

impl CodeProblem {
    pub fn code(self) -> &'static str {
        match self {
            CodeProblem::Unknown => "enrolment_code_unknown",
            CodeProblem::Used => "enrolment_code_used",
            CodeProblem::Withdrawn => "enrolment_code_withdrawn",
            CodeProblem::Expired => "enrolment_code_expired",
            CodeProblem::AccountDisabled => "account_disabled",
            CodeProblem::ChooseMember => "enrolment_choose_member",
            CodeProblem::NotAMember => "enrolment_not_a_member",
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            CodeProblem::Unknown => "this enrolment code is not known: check it, or ask for a new sheet",
            CodeProblem::Used => "this enrolment code was used already: ask for a new one",
            CodeProblem::Withdrawn => "this enrolment code was withdrawn: use the newest sheet, or ask for one",
            CodeProblem::Expired => "this enrolment code has expired: ask the office or your lead for a new one",
            CodeProblem::AccountDisabled => "this account is disabled; ask the office",
            CodeProblem::ChooseMember => "this is a team's enrolment code: choose whose phone this is (\"member\")",
            CodeProblem::NotAMember => "this enrolment code does not enrol that person: choose a volunteer of its team",
        }
    }
}

/// A stored code that still works: its id, and its person or its team.
enum Working {
    Person(String, String),
    Team(String, String),
}

async fn working(db: &Db, code: &str) -> Result<Result<Working, CodeProblem>, Refusal> {
    let Some((id, username, team, expires_at, uses, used, revoked_at)) =
        enrolment_codes::by_hash(db, &code_digest(code)).await?
    else {
        return Ok(Err(CodeProblem::Unknown));
    };
    if revoked_at.is_some() {
        return Ok(Err(CodeProblem::Withdrawn));
    }
    if used >= uses {
        return Ok(Err(CodeProblem::Used));
    }
    if expires_at <= now_ms() {
        return Ok(Err(CodeProblem::Expired));
    }
    Ok(match (username, team) {
        (Some(username), _) => Ok(Working::Person(id, username)),
        (None, Some(team)) => Ok(Working::Team(id, team)),
        (None, None) => Err(CodeProblem::Unknown),
    })
}

/// What a working code is for, so that the phone can ask the volunteer the one thing it needs: nothing (a
/// person's code names them), or their name among the team's volunteers.
pub async fn look_up(db: &Db, code: &str) -> Result<Result<CodeLookup, CodeProblem>, Refusal> {
    Ok(match working(db, code).await? {
        Err(problem) => Err(problem),
        Ok(Working::Person(_, username)) => {
            Ok(CodeLookup { kind: "person".into(), team: None, members: vec![username] })
        }
        Ok(Working::Team(_, team)) => {
            let members = enrolment_codes::active_members(db, &team, SHARED_CODE_ROLES).await?;
            Ok(CodeLookup { kind: "team".into(), team: Some(team), members })
        }
    })
}

/// The person a code enrols (with a team's code, `member`, one of its volunteers) and the code's id, if the
/// code is one that still works, or why it does not. A use of the code is taken only with the device that uses
/// it (`people::enrol_device_claiming`).
pub async fn redeemable(
    db: &Db,
    code: &str,
    member: Option<&str>,
) -> Result<Result<(String, UserRecord), CodeProblem>, Refusal> {
    let (id, username) = match working(db, code).await? {
        Err(problem) => return Ok(Err(problem)),
        Ok(Working::Person(id, username)) => {
            if member.is_some_and(|m| m != username) {
                return Ok(Err(CodeProblem::NotAMember));
            }
            (id, username)
        }
        Ok(Working::Team(id, team)) => {
            let Some(member) = member else { return Ok(Err(CodeProblem::ChooseMember)) };
            if !enrolment_codes::active_members(db, &team, SHARED_CODE_ROLES).await?.iter().any(|m| m == member) {
                return Ok(Err(CodeProblem::NotAMember));
            }
            (id, member.to_string())
        }
    };
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
        .map(|(id, username, team, uses, used, issued_by, issued_at, expires_at, used_at, device_id, revoked_at)| {
            let state = if used >= uses {
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
                uses,
                used,
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

/// The team of a code (a team's, or its person's): `None` if there is no such code.
pub async fn owner_team(db: &Db, id: &str) -> StoreResult<Option<Option<String>>> {
    enrolment_codes::owner_team(db, id).await
}

/// Revokes a code with uses left; false if it was used up or revoked already.
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
