//! The command line of `doorstep`: every command, flag and argument (clap types). `main.rs` dispatches them.

use crate::{output, serve};
use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "doorstep",
    version,
    about = "Offline-first door-to-door outreach: record visits, merge them, report coverage"
)]
pub(crate) struct Cli {
    /// Client state: login session, enrolled device and its grids.
    #[arg(long, global = true, env = "DOORSTEP_PROFILE")]
    pub(crate) profile: Option<PathBuf>,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Run the server.
    Serve(serve::ServeArgs),
    /// Administration that works directly on the server's data dir, without a running server.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Copy a town's data from SQLite to PostgreSQL, verifying counts and every grid document's heads.
    Migrate {
        /// sqlite://PATH of the source (e.g. sqlite://doorstep-data/doorstep.db).
        #[arg(long)]
        from: String,
        /// postgres://… of an empty destination database.
        #[arg(long)]
        to: String,
    },
    /// Log in to a server as office, lead or viewer.
    Login {
        #[arg(long)]
        server: String,
        #[arg(long)]
        username: String,
        /// Read the password from the first line of stdin.
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// End the office session (the refresh token is revoked).
    Logout,
    /// Publish, correct and withdraw bulletins to volunteers' phones, and see who has read them.
    Bulletin {
        #[command(subcommand)]
        command: BulletinCommand,
    },
    /// Show, check or apply the campaign definition: what counts (see docs/campaigns.md).
    Campaign {
        #[command(subcommand)]
        command: CampaignCommand,
    },
    /// Import places and areas.
    Territory {
        #[command(subcommand)]
        command: TerritoryCommand,
    },
    /// Manage users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Manage teams.
    Team {
        #[command(subcommand)]
        command: TeamCommand,
    },
    /// Assign grids to a team: some grids, or every grid of a village or community (all or nothing).
    Assign {
        /// Grid codes.
        #[arg(required_unless_present = "village", conflicts_with = "village")]
        grid_codes: Vec<String>,
        /// Every grid of this village or community.
        #[arg(long)]
        village: Option<String>,
        #[arg(long)]
        team: String,
    },
    /// Take a grid from its team: the devices that held it are told at their next sync.
    Unassign { grid_code: String },
    /// List grids with their village, town, team and places.
    Grid {
        #[command(subcommand)]
        command: GridCommand,
    },
    /// List and revoke field devices.
    Device {
        #[command(subcommand)]
        command: DeviceCommand,
    },
    /// One-time enrolment codes for phones (office: anyone's; lead: their team's).
    Enrolment {
        #[command(subcommand)]
        command: EnrolmentCommand,
    },
    /// Show or change server settings (office).
    Settings {
        #[command(subcommand)]
        command: SettingsCommand,
    },
    /// Read the audit log (logins, imports, assignments, revocations, rejected syncs), oldest first.
    Audit {
        /// Only events at or after this RFC 3339 time.
        #[arg(long)]
        since: Option<String>,
        /// Only events before this RFC 3339 time.
        #[arg(long)]
        until: Option<String>,
        /// Only this person's events.
        #[arg(long)]
        user: Option<String>,
        /// Only this action, or this family of actions (`campaign` takes `campaign.apply`).
        #[arg(long)]
        action: Option<String>,
        /// The newest first.
        #[arg(long)]
        newest: bool,
        /// At most this many events (at most 10,000, the default).
        #[arg(long)]
        limit: Option<u32>,
        #[arg(long, value_enum, default_value = "table")]
        format: output::Format,
    },
    /// Urgent dissuasion tasks (预警劝阻): issue, follow and evaluate.
    Task {
        #[command(subcommand)]
        command: TaskCommand,
    },
    /// Print reports.
    Report {
        #[command(subcommand)]
        command: ReportCommand,
    },
    /// The offline field client.
    Field {
        #[command(subcommand)]
        command: FieldCommand,
    },
    /// A team lead's device as the team's sync hub at base, without internet.
    Hub {
        #[command(subcommand)]
        command: HubCommand,
    },
    /// Photos that visits carry as evidence: list them, save one, reject one that does not show the delivery.
    Photo {
        #[command(subcommand)]
        command: PhotoCommand,
    },
    /// Review places found in the field and corrections proposed from it (office).
    Place {
        #[command(subcommand)]
        command: PlaceCommand,
    },
    /// The liaison roster (联络员名单): each village's or community's 分管领导 and 联络员.
    Roster {
        #[command(subcommand)]
        command: RosterCommand,
    },
    /// Villages' and communities' monthly written submissions (每月20日前书面报送) and situation reports.
    Submissions {
        #[command(subcommand)]
        command: SubmissionsCommand,
    },
}

#[derive(Subcommand)]
pub(crate) enum RosterCommand {
    /// Every village and community you may read with the people it named (phones masked unless yours to see).
    Show {
        #[arg(long, value_enum, default_value = "table")]
        format: output::Format,
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// The roster as the seed's spreadsheet: a title row; 姓名, 职务, 联系电话, 备注 grouped by village and unit.
    Export {
        #[arg(long)]
        output: PathBuf,
    },
    /// Set the date by which every village and community names its people (office); "" clears it.
    Deadline {
        /// YYYY-MM-DD; the whole day counts (local time, +08:00).
        date: String,
    },
}

#[derive(Subcommand)]
pub(crate) enum SubmissionsCommand {
    /// Each village's and community's submission of a month: submitted on time, late, or not yet.
    List {
        /// The month, YYYY-MM.
        #[arg(long)]
        month: String,
        #[arg(long, value_enum, default_value = "table")]
        format: output::Format,
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// One area's submission of a month: its figures and what its cadre wrote.
    Show {
        area: String,
        #[arg(long)]
        month: String,
        #[arg(long, value_enum, default_value = "table")]
        format: output::Format,
    },
    /// Major or urgent situation reports, the newest first.
    Situations {
        #[arg(long, value_enum, default_value = "table")]
        format: output::Format,
    },
}

#[derive(Subcommand)]
pub(crate) enum HubCommand {
    /// Serve the sync API for the team's grids from this (lead's) profile, for `field sync --via`.
    Serve(HubServeArgs),
    /// Forward everything the team synced through this hub to the server, and receive what is new; renews the
    /// hub certificate when it is due.
    Sync,
    /// Get this hub an HTTPS certificate signed by the installation's Doorstep CA, for the addresses phones reach
    /// it at (without addresses: renew the one held). `hub serve` then serves HTTPS.
    Certificate(HubCertificateArgs),
}

#[derive(clap::Args)]
pub(crate) struct HubServeArgs {
    /// Address the team's devices reach the hub at, e.g. 0.0.0.0:8090 on the base's network.
    #[arg(long, default_value = "0.0.0.0:8090")]
    listen: String,
    /// Seconds between attempts to forward everything to the server; 0 leaves it to `doorstep hub sync`.
    #[arg(long, default_value_t = 300)]
    upstream_every: u64,
    /// Refuse to start without HTTPS (phones' browsers run the field app only over HTTPS).
    #[arg(long, conflicts_with = "plain_http")]
    tls: bool,
    /// Serve HTTPS with this certificate chain (PEM) instead of the profile's hub certificate. Needs --tls-key.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Serve plain HTTP although the profile holds a hub certificate (CLI devices only).
    #[arg(long, conflicts_with_all = ["tls_cert", "tls_key"])]
    plain_http: bool,
}

impl From<HubServeArgs> for field::hub::ServeArgs {
    fn from(a: HubServeArgs) -> Self {
        field::hub::ServeArgs {
            listen: a.listen,
            upstream_every: a.upstream_every,
            tls: a.tls,
            tls_cert: a.tls_cert,
            tls_key: a.tls_key,
            plain_http: a.plain_http,
        }
    }
}

#[derive(clap::Args)]
pub(crate) struct HubCertificateArgs {
    /// An IP address phones reach the hub at on the base's network (a private address), e.g. 192.168.1.10.
    /// Repeatable.
    #[arg(long = "ip")]
    ips: Vec<std::net::IpAddr>,
    /// A DNS name of the hub on the base's network, under .local, .lan, .home.arpa or .internal. Repeatable.
    #[arg(long = "name")]
    names: Vec<String>,
}

impl From<HubCertificateArgs> for field::hub::tls::CertificateArgs {
    fn from(a: HubCertificateArgs) -> Self {
        field::hub::tls::CertificateArgs { ips: a.ips, names: a.names }
    }
}

#[derive(Subcommand)]
pub(crate) enum PhotoCommand {
    /// Visits' photos you may see (office: all; lead: the team's grids; viewer: the area), the newest visit first.
    List {
        /// Only within this area (town, village or grid code).
        #[arg(long)]
        area: Option<String>,
        /// Only this place's photos.
        #[arg(long)]
        place: Option<String>,
        /// Only photos of visits that reach this indicator.
        #[arg(long)]
        indicator: Option<String>,
        #[arg(long, value_enum, default_value = "all")]
        state: PhotoStateArg,
        /// At most this many photos (every page is read until then).
        #[arg(long, default_value_t = 1000)]
        limit: usize,
        #[arg(long, value_enum, default_value = "table")]
        format: output::Format,
        /// Write csv or xlsx to this file instead of standard output.
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// For each indicator that asks for a photo: reached places, and how many of them have a photo that arrived
    /// and stands (not rejected).
    Evidence {
        /// Only within this area (town, village or grid code).
        #[arg(long)]
        area: Option<String>,
        #[arg(long, value_enum, default_value = "table")]
        format: output::Format,
        /// Write csv or xlsx to this file instead of standard output.
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// Save a photo that arrived (the checked copy, without metadata) or its thumbnail to a file.
    Get {
        /// The photo's SHA-256 (from `doorstep photo list`).
        sha256: String,
        #[arg(long)]
        out: PathBuf,
        /// The thumbnail instead of the photo.
        #[arg(long)]
        thumbnail: bool,
    },
    /// Reject a visit's photo as not showing the delivery (office): the place is counted without it, and the
    /// volunteer's phone shows why at its next sync.
    Reject {
        sha256: String,
        /// The visit carrying the photo.
        #[arg(long)]
        visit: String,
        /// Why; the volunteer reads it.
        #[arg(long)]
        reason: String,
    },
}

/// Which photos `photo list` shows.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum PhotoStateArg {
    /// Every photo.
    All,
    /// Not rejected.
    Standing,
    /// Rejected by the office.
    Rejected,
}

#[derive(Subcommand)]
pub(crate) enum PlaceCommand {
    /// What awaits review: places found in the field and proposed corrections.
    Review {
        #[arg(long)]
        grid: Option<String>,
        #[arg(long, value_enum, default_value = "table")]
        format: ListFormat,
    },
    /// Confirm a place found in the field (F-…), or a correction (its id): the place takes the new label/address.
    Confirm { id: String },
    /// Reject a place found in the field (it leaves coverage), or a correction.
    Reject { id: String },
    /// Merge a place found in the field into the existing place it duplicates; its visits count there.
    Merge {
        id: String,
        #[arg(long)]
        into: String,
    },
}

#[derive(Subcommand)]
pub(crate) enum AdminCommand {
    /// Copy the embedded SQLite database to FILE while the server keeps running (a consistent snapshot), and the
    /// attachments' files to FILE.blobs/ (restore it as the data dir's blobs/).
    Backup {
        #[arg(long, default_value = "doorstep-data")]
        data_dir: PathBuf,
        #[arg(long)]
        output: PathBuf,
    },
    /// Create a user directly in the database (bootstrap the first office account).
    CreateUser {
        #[arg(long, default_value = "doorstep-data")]
        data_dir: PathBuf,
        #[arg(long, env = "DOORSTEP_DATABASE_URL")]
        database_url: Option<String>,
        #[arg(long)]
        username: String,
        #[arg(long, value_enum)]
        role: RoleArg,
        #[arg(long)]
        team: Option<String>,
        #[arg(long)]
        area: Option<String>,
        #[arg(long, required = true)]
        password_stdin: bool,
    },
}

#[derive(Subcommand)]
pub(crate) enum CampaignCommand {
    /// Print the campaign in force: its version and its definition file.
    Show,
    /// Check a definition file on this machine (no server needed): every problem with its line and field.
    Check { file: PathBuf },
    /// Apply a definition file as the next version; says what changes (indicators, places per village).
    Apply {
        file: PathBuf,
        /// Say what would change, changing nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

/// What a bulletin says and whom it is for (`bulletin publish` and `bulletin correct`).
#[derive(clap::Args)]
pub(crate) struct BulletinArgs {
    /// The title phones show.
    #[arg(long)]
    pub title: String,
    /// A UTF-8 text file with the body (plain text; `**bold**` and lines starting with `- `).
    #[arg(long)]
    pub body_file: PathBuf,
    /// fraud_method (诈骗手法), reminder (提醒), template (宣传资料模板) or talking_points (入户宣讲要点).
    #[arg(long)]
    pub kind: String,
    /// The task fraud type it concerns: impersonation, dating, investment, gambling or other.
    #[arg(long)]
    pub fraud_type: Option<String>,
    /// Shown first on phones until read.
    #[arg(long)]
    pub urgent: bool,
    /// Every volunteer.
    #[arg(long)]
    pub everyone: bool,
    /// The teams working in this town (name or code); repeatable.
    #[arg(long)]
    pub town: Vec<String>,
    /// The teams working in this village or community (name or code); repeatable.
    #[arg(long)]
    pub village: Vec<String>,
    /// This team; repeatable.
    #[arg(long)]
    pub team: Vec<String>,
    /// The last day it is shown (YYYY-MM-DD, in this machine's time zone); withdrawn after it.
    #[arg(long)]
    pub expires: Option<chrono::NaiveDate>,
    /// An image (JPEG, PNG, WebP, GIF) or PDF to attach; repeatable, at most 8, 10 MiB each.
    #[arg(long)]
    pub attach: Vec<PathBuf>,
}

#[derive(Subcommand)]
pub(crate) enum BulletinCommand {
    /// Publish a bulletin; phones receive it at their next sync. Prints its id.
    Publish(BulletinArgs),
    /// The bulletins, newest first, with how many have read each.
    List {
        #[arg(long, value_enum, default_value = "table")]
        format: ListFormat,
    },
    /// Publish a corrected edition: phones show it instead, and ask to read it again.
    Correct {
        id: String,
        #[command(flatten)]
        bulletin: BulletinArgs,
    },
    /// Withdraw a bulletin: phones delete it at their next sync.
    Withdraw { id: String },
    /// Who has read a bulletin (per team and village) and who has not.
    Receipts {
        /// Volunteers who have not read it this many days after publication are overdue.
        #[arg(long, default_value_t = 3)]
        days: i64,
        /// table (with the tallies), json, csv or xlsx (a row per expected reader).
        #[arg(long, value_enum, default_value = "table")]
        format: output::Format,
        /// Write csv or xlsx to this file instead of standard output.
        #[arg(long)]
        output: Option<PathBuf>,
        id: String,
    },
}

#[derive(Subcommand)]
pub(crate) enum TerritoryCommand {
    /// Import a territory file: CSV, or an Excel/WPS workbook (.xlsx, its first sheet), told apart by content
    /// (see docs/territory-csv.md). Re-importing the same file changes nothing.
    Import {
        /// The file: FILE.csv or FILE.xlsx.
        file: PathBuf,
        /// Check the file and show what would change, changing nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum RoleArg {
    Volunteer,
    Lead,
    Office,
    Viewer,
}

impl RoleArg {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            RoleArg::Volunteer => "volunteer",
            RoleArg::Lead => "lead",
            RoleArg::Office => "office",
            RoleArg::Viewer => "viewer",
        }
    }
}

#[derive(Subcommand)]
pub(crate) enum UserCommand {
    Create {
        username: String,
        #[arg(long, value_enum)]
        role: RoleArg,
        #[arg(long)]
        team: Option<String>,
        /// For viewers: the area code they may read.
        #[arg(long)]
        area: Option<String>,
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// Disable an account: its sessions and all its devices stop working at once.
    Disable { username: String },
    /// Users with their role, team, area, active devices and last sync (a lead: their own team).
    List {
        #[arg(long)]
        team: Option<String>,
        #[arg(long, value_enum)]
        role: Option<RoleArg>,
        /// Only usernames containing this text.
        #[arg(long)]
        search: Option<String>,
        #[arg(long, value_enum, default_value = "table")]
        format: output::Format,
    },
    /// Change a user's role, team or area (moving a volunteer: their phone gets the new team's grids at its next
    /// sync).
    Edit {
        username: String,
        #[arg(long, value_enum)]
        role: Option<RoleArg>,
        #[arg(long, conflicts_with = "no_team")]
        team: Option<String>,
        /// Take the user out of their team.
        #[arg(long)]
        no_team: bool,
        /// For viewers: the area code they may read.
        #[arg(long)]
        area: Option<String>,
        /// Let the account publish bulletins (e.g. the police station's), or no longer: true or false.
        #[arg(long)]
        may_publish: Option<bool>,
    },
    /// Undo `user disable`: the account may log in again (its phones enrol again).
    Enable { username: String },
    /// Give a user a new password, printed once (or read from stdin); their sessions end.
    Password {
        username: String,
        /// Read the new password from stdin instead of having the server choose one.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Lift the login limits on an account (its failed logins from every address, and the pace set on it), e.g.
    /// when strangers' guesses hold a volunteer back.
    Unlock { username: String },
}

#[derive(Subcommand)]
pub(crate) enum SettingsCommand {
    /// Print every setting and its value.
    Show,
    /// Change a setting, e.g. `settings set share_contacts on` to send contact details to the teams' devices.
    Set { name: String, value: String },
}

#[derive(Subcommand)]
pub(crate) enum DeviceCommand {
    /// Devices of every user (office) or of your team (lead).
    List {
        #[arg(long, value_enum, default_value = "table")]
        format: output::Format,
    },
    /// Stop a device's token from working, at once.
    Revoke { device_id: String },
}

#[derive(Subcommand)]
pub(crate) enum EnrolmentCommand {
    /// Issue a code for each named person, or for each member of a team; prints the codes (shown only now).
    Issue {
        /// Every active volunteer and lead of this team.
        #[arg(long, required_unless_present = "user", conflicts_with = "user")]
        team: Option<String>,
        /// A person to issue a code for (repeat for more).
        #[arg(long)]
        user: Vec<String>,
        /// With --team: one code the team's volunteers share, for this many phones (each taps their name).
        #[arg(long, requires = "team")]
        shared: Option<i64>,
        /// How long the codes work, 1 to 72 hours.
        #[arg(long, default_value_t = 24)]
        hours: i64,
        /// The address phones open (default: the server logged in to; a team hub's for a base without internet).
        #[arg(long)]
        address: Option<String>,
        #[arg(long, value_enum, default_value = "table")]
        format: output::Format,
    },
    /// Codes issued in the last 30 days, with their state (never the codes themselves).
    List {
        #[arg(long, value_enum, default_value = "table")]
        format: output::Format,
    },
    /// Withdraw an unused code (a sheet lost or printed by mistake).
    Revoke { id: String },
}

#[derive(Subcommand)]
pub(crate) enum TeamCommand {
    Create {
        name: String,
        #[arg(long)]
        lead: Option<String>,
    },
    /// Teams with their lead, members and grids (a lead: their own).
    List {
        #[arg(long, value_enum, default_value = "table")]
        format: output::Format,
    },
    /// Name a team's lead: they join the team as its lead, and its other leads become volunteers.
    Lead {
        name: String,
        #[arg(required_unless_present = "none")]
        username: Option<String>,
        /// The team has no named lead (its leads become volunteers).
        #[arg(long, conflicts_with = "username")]
        none: bool,
    },
}

#[derive(Subcommand)]
pub(crate) enum GridCommand {
    /// Grids with their village, town, team and places (a lead: their own team's).
    List {
        /// Only grids without a team.
        #[arg(long, conflicts_with = "team")]
        unassigned: bool,
        /// Only the grids of this village or community.
        #[arg(long)]
        village: Option<String>,
        /// Only this team's grids.
        #[arg(long)]
        team: Option<String>,
        #[arg(long, value_enum, default_value = "table")]
        format: output::Format,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum ByArg {
    Town,
    Village,
    Grid,
    Team,
    Volunteer,
}

#[derive(Subcommand)]
pub(crate) enum ReportCommand {
    /// Eligible, reached, excluded and rate per indicator.
    Coverage {
        #[arg(long, value_enum, default_value = "village")]
        by: ByArg,
        /// Only this area and what lies below it.
        #[arg(long)]
        area: Option<String>,
        #[arg(long, value_enum, default_value = "table")]
        format: output::Format,
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// The month's ranking of villages and communities (coverage at month end, change, visits, laggards).
    Monthly {
        /// The month, YYYY-MM.
        #[arg(long)]
        month: String,
        /// Only this area (usually a town) and what lies below it.
        #[arg(long)]
        area: Option<String>,
        /// Units whose score is below this rate (0..1) are listed as laggards; default 0.8.
        #[arg(long)]
        threshold: Option<f64>,
        /// The local time of month boundaries; default +08:00.
        #[arg(long, allow_hyphen_values = true)]
        utc_offset: Option<String>,
        #[arg(long, value_enum, default_value = "table")]
        format: output::Format,
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// Places not yet reached for an indicator, or needing a revisit: of a grid, an area, or everything you may
    /// read. JSON, CSV and XLSX are written as they arrive; a file appears only once complete.
    Gaps {
        #[arg(long, conflicts_with = "area")]
        grid: Option<String>,
        /// A town, village or community (or a grid) and what lies below it.
        #[arg(long)]
        area: Option<String>,
        #[arg(long)]
        indicator: Option<String>,
        /// Only places whose last visit found nobody home or was refused.
        #[arg(long)]
        revisit: bool,
        /// Every place, reached or not, with what it still misses.
        #[arg(long, conflicts_with_all = ["indicator", "revisit"])]
        all: bool,
        #[arg(long, value_enum, default_value = "table")]
        format: output::Format,
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// Coverage per indicator at the end of each day (default: the last 30 days).
    Progress {
        #[arg(long)]
        area: Option<String>,
        /// First day, YYYY-MM-DD.
        #[arg(long)]
        from: Option<String>,
        /// Last day, YYYY-MM-DD.
        #[arg(long)]
        to: Option<String>,
        #[arg(long, value_enum, default_value = "table")]
        format: output::Format,
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// Visits per team or volunteer over a period (default: the last 30 days).
    Activity {
        #[arg(long, value_enum, default_value = "team")]
        by: ActivityByArg,
        #[arg(long)]
        area: Option<String>,
        #[arg(long)]
        from: Option<String>,
        #[arg(long)]
        to: Option<String>,
        #[arg(long, value_enum, default_value = "table")]
        format: output::Format,
        #[arg(long)]
        output: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
pub(crate) enum TaskCommand {
    /// Issue a task to the team holding the target's grid (or a chosen team). Prints the task id.
    Create {
        /// The target is a place of the registry.
        #[arg(long, conflicts_with = "address")]
        place: Option<String>,
        /// The target's address, for someone not in the registry.
        #[arg(long)]
        address: Option<String>,
        /// The grid where the address lies (its team acts, unless --team is given).
        #[arg(long)]
        grid: Option<String>,
        /// The team to act, instead of the grid's.
        #[arg(long)]
        team: Option<String>,
        /// The person, as the warning platform names them (e.g. "王某, 62").
        #[arg(long)]
        person: String,
        #[arg(long)]
        phone: Option<String>,
        /// impersonation (冒充公检法), dating (网络交友), investment (投资理财), gambling (网络赌博) or other (其他).
        #[arg(long)]
        fraud_type: String,
        #[arg(long, value_enum, default_value = "urgent")]
        priority: PriorityArg,
        /// When the person must have been reached (RFC 3339).
        #[arg(long, conflicts_with = "within")]
        deadline: Option<String>,
        /// The deadline as a delay from now: 90m, 2h, 1d.
        #[arg(long)]
        within: Option<String>,
        #[arg(long)]
        instructions: Option<String>,
    },
    /// Tasks, most urgent first, with sign-for, response and reach times.
    List {
        #[arg(long, value_enum, default_value = "active")]
        status: TaskStatusArg,
        #[arg(long, value_enum, default_value = "table")]
        format: output::Format,
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// One task in full: target, outcomes, evaluations, and the devices that received it.
    Show {
        task_id: String,
        #[arg(long, value_enum, default_value = "table")]
        format: ListFormat,
    },
    /// Evaluate (评价) a task the team has reported on: effective and ineffective close it.
    Evaluate {
        task_id: String,
        #[arg(long, value_enum)]
        result: EvaluationArg,
        #[arg(long)]
        comment: Option<String>,
        /// With follow-up: a new deadline (RFC 3339).
        #[arg(long)]
        deadline: Option<String>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum PriorityArg {
    Urgent,
    High,
    Normal,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum TaskStatusArg {
    Active,
    Open,
    Overdue,
    Done,
    FollowUp,
    Closed,
    All,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum EvaluationArg {
    Effective,
    Ineffective,
    FollowUp,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum MethodArg {
    FaceToFace,
    Phone,
    Sms,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum YesNo {
    Yes,
    No,
}

impl YesNo {
    pub(crate) fn yes(self) -> bool {
        matches!(self, YesNo::Yes)
    }
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum ActivityByArg {
    Team,
    Volunteer,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub(crate) enum ListFormat {
    Table,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum OutcomeArg {
    Completed,
    NobodyHome,
    Refused,
    Gone,
}

#[derive(Subcommand)]
pub(crate) enum FieldCommand {
    /// Enrol this device with the server.
    Login {
        #[arg(long)]
        server: String,
        #[arg(long, required_unless_present = "code", conflicts_with = "code")]
        username: Option<String>,
        /// Read the password from standard input (with --username).
        #[arg(long, requires = "username")]
        password_stdin: bool,
        /// A one-time enrolment code from an enrolment sheet, instead of a username and password.
        #[arg(long)]
        code: Option<String>,
        /// With a team's shared code: whose device this is (one of the team's volunteers).
        #[arg(long, requires = "code")]
        member: Option<String>,
        /// A name for this device, shown to the office.
        #[arg(long, default_value = "field device")]
        device_name: String,
    },
    /// Send this device's visits and receive the team's grids and visits.
    Sync {
        /// Sync through another address (e.g. a team hub) instead of the enrolment server.
        #[arg(long)]
        via: Option<String>,
        /// Send the visits now and leave the photos for a later sync (e.g. on Wi-Fi).
        #[arg(long)]
        skip_photos: bool,
    },
    /// List the places of this device's grids.
    Places {
        #[arg(long)]
        grid: Option<String>,
        /// Only places with something left to do.
        #[arg(long)]
        todo: bool,
        #[arg(long, value_enum, default_value = "table")]
        format: ListFormat,
    },
    /// Record a visit (works offline). Prints the visit id.
    Visit {
        place_id: String,
        /// What the visit delivered: ids of the campaign's deliveries, comma-separated (e.g. poster,handbook).
        #[arg(long, value_delimiter = ',')]
        deliver: Vec<String>,
        /// The same as `--deliver handbook` (and so on for the flags below).
        #[arg(long)]
        handbook: bool,
        #[arg(long)]
        briefed: bool,
        #[arg(long)]
        poster: bool,
        #[arg(long)]
        banner: bool,
        #[arg(long)]
        led_playing: bool,
        #[arg(long, value_enum)]
        outcome: Option<OutcomeArg>,
        #[arg(long)]
        note: Option<String>,
        /// When the visit happened (RFC 3339); defaults to now.
        #[arg(long)]
        at: Option<String>,
        /// LAT,LON
        #[arg(long)]
        gps: Option<String>,
        /// A photo of what was delivered (JPEG, WebP or PNG from a camera; shrunk on this device, at most 8).
        /// Kept with the visit and uploaded after a sync.
        #[arg(long = "photo", value_name = "FILE")]
        photos: Vec<std::path::PathBuf>,
    },
    /// The bulletins on this device (通报): unread urgent ones first (works offline).
    Bulletins {
        #[arg(long, value_enum, default_value = "table")]
        format: ListFormat,
    },
    /// Read one bulletin and mark it read (已阅); the receipt reaches the office at the next sync (works offline).
    Read {
        /// The bulletin id, or its first characters (at least 4).
        id: String,
    },
    /// The urgent tasks on this device, those still to do first (works offline).
    Tasks {
        #[arg(long, value_enum, default_value = "table")]
        format: ListFormat,
    },
    /// Open one urgent task: target, phone, instructions. The first open is recorded (signed for).
    Task {
        /// The task id, or its first characters (at least 4).
        task_id: String,
        #[arg(long, value_enum, default_value = "table")]
        format: ListFormat,
    },
    /// Record what was done for an urgent task (works offline). Prints the outcome id.
    TaskDone {
        task_id: String,
        #[arg(long, value_enum)]
        method: MethodArg,
        /// Whether the person was reached.
        #[arg(long, value_enum)]
        reached: YesNo,
        /// Whether the person was dissuaded (only if reached).
        #[arg(long, value_enum, default_value = "no")]
        dissuaded: YesNo,
        /// Whether money had already been lost.
        #[arg(long, value_enum, default_value = "no")]
        money_lost: YesNo,
        /// The amount lost, in yuan (e.g. 5000 or 1234.50).
        #[arg(long)]
        amount: Option<String>,
        /// What happened, for the office (反馈).
        #[arg(long)]
        feedback: Option<String>,
        /// When it happened (RFC 3339); defaults to now.
        #[arg(long)]
        at: Option<String>,
        /// LAT,LON
        #[arg(long)]
        gps: Option<String>,
    },
    /// Unsynced visits and last sync.
    Status {
        #[arg(long, value_enum, default_value = "table")]
        format: ListFormat,
    },
    /// Record a place the registry lacks, found in the field (works offline). Prints its id.
    AddPlace {
        #[arg(long)]
        grid: String,
        /// household, shop, building, street_block, market, pedestrian_street, scenic_spot,
        /// residential_complex, led_screen (or the Chinese term).
        #[arg(long)]
        kind: String,
        #[arg(long)]
        label: String,
        #[arg(long)]
        address: Option<String>,
        /// LAT,LON
        #[arg(long)]
        gps: Option<String>,
    },
    /// Propose a corrected label and/or address for a place (works offline). Prints the correction's id.
    Correct {
        place_id: String,
        #[arg(long)]
        label: Option<String>,
        #[arg(long)]
        address: Option<String>,
    },
}
