//! `doorstep`: the one binary — server, office client and offline field client.

mod field;
mod field_found;
mod field_tasks;
mod http;
mod hub;
mod hub_enrol;
mod hub_exchange;
mod hub_tasks;
mod hub_tls;
mod hub_trust;
mod office;
mod output;
mod profile;
mod relay;
mod reports_cli;
mod review_cli;
mod serve;
mod tasks_cli;

use anyhow::{bail, Context, Result};

/// The server allocates and frees many small objects per sync (automerge operations, rows, buffers); glibc's
/// allocator spent about a sixth of the server's CPU on it under load, mimalloc a fraction of that.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use clap::{Parser, Subcommand, ValueEnum};
use client_core::model::{Deliveries, Outcome};
use client_core::task_model::{parse_yuan, ContactMethod};
use std::io::BufRead;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "doorstep",
    version,
    about = "Offline-first door-to-door outreach: record visits, merge them, report coverage"
)]
struct Cli {
    /// Client state: login session, enrolled device and its grids.
    #[arg(long, global = true, env = "DOORSTEP_PROFILE")]
    profile: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
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
    /// Assign a grid to a team.
    Assign {
        grid_code: String,
        #[arg(long)]
        team: String,
    },
    /// List and revoke field devices.
    Device {
        #[command(subcommand)]
        command: DeviceCommand,
    },
    /// Show or change server settings (office).
    Settings {
        #[command(subcommand)]
        command: SettingsCommand,
    },
    /// Read the audit log (logins, imports, assignments, revocations, rejected syncs).
    Audit {
        /// Only events at or after this RFC 3339 time.
        #[arg(long)]
        since: Option<String>,
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
    /// Review places found in the field and corrections proposed from it (office).
    Place {
        #[command(subcommand)]
        command: PlaceCommand,
    },
}

#[derive(Subcommand)]
enum HubCommand {
    /// Serve the sync API for the team's grids from this (lead's) profile, for `field sync --via`.
    Serve(hub::ServeArgs),
    /// Forward everything the team synced through this hub to the server, and receive what is new; renews the
    /// hub certificate when it is due.
    Sync,
    /// Get this hub an HTTPS certificate signed by the installation's Doorstep CA, for the addresses phones reach
    /// it at (without addresses: renew the one held). `hub serve` then serves HTTPS.
    Certificate(hub_tls::CertificateArgs),
}

#[derive(Subcommand)]
enum PlaceCommand {
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
enum AdminCommand {
    /// Copy the embedded SQLite database to FILE while the server keeps running (a consistent snapshot).
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
enum TerritoryCommand {
    /// Import a territory CSV (see docs/territory-csv.md). Re-importing the same file changes nothing.
    Import {
        file: PathBuf,
        /// Check the file and show what would change, changing nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum RoleArg {
    Volunteer,
    Lead,
    Office,
    Viewer,
}

impl RoleArg {
    fn as_str(self) -> &'static str {
        match self {
            RoleArg::Volunteer => "volunteer",
            RoleArg::Lead => "lead",
            RoleArg::Office => "office",
            RoleArg::Viewer => "viewer",
        }
    }
}

#[derive(Subcommand)]
enum UserCommand {
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
    /// Lift the login limits on an account (its failed logins from every address, and the pace set on it), e.g.
    /// when strangers' guesses hold a volunteer back.
    Unlock { username: String },
}

#[derive(Subcommand)]
enum SettingsCommand {
    /// Print every setting and its value.
    Show,
    /// Change a setting, e.g. `settings set share_contacts on` to send contact details to the teams' devices.
    Set { name: String, value: String },
}

#[derive(Subcommand)]
enum DeviceCommand {
    /// Devices of every user (office) or of your team (lead).
    List {
        #[arg(long, value_enum, default_value = "table")]
        format: output::Format,
    },
    /// Stop a device's token from working, at once.
    Revoke { device_id: String },
}

#[derive(Subcommand)]
enum TeamCommand {
    Create {
        name: String,
        #[arg(long)]
        lead: Option<String>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum ByArg {
    Town,
    Village,
    Grid,
    Team,
    Volunteer,
}

#[derive(Subcommand)]
enum ReportCommand {
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
enum TaskCommand {
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
enum PriorityArg {
    Urgent,
    High,
    Normal,
}

#[derive(Clone, Copy, ValueEnum)]
enum TaskStatusArg {
    Active,
    Open,
    Overdue,
    Done,
    FollowUp,
    Closed,
    All,
}

#[derive(Clone, Copy, ValueEnum)]
enum EvaluationArg {
    Effective,
    Ineffective,
    FollowUp,
}

#[derive(Clone, Copy, ValueEnum)]
enum MethodArg {
    FaceToFace,
    Phone,
    Sms,
}

#[derive(Clone, Copy, ValueEnum)]
enum YesNo {
    Yes,
    No,
}

impl YesNo {
    fn yes(self) -> bool {
        matches!(self, YesNo::Yes)
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum ActivityByArg {
    Team,
    Volunteer,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum ListFormat {
    Table,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum OutcomeArg {
    Completed,
    NobodyHome,
    Refused,
    Gone,
}

#[derive(Subcommand)]
enum FieldCommand {
    /// Enrol this device with the server.
    Login {
        #[arg(long)]
        server: String,
        #[arg(long)]
        username: String,
        #[arg(long, required = true)]
        password_stdin: bool,
        /// A name for this device, shown to the office.
        #[arg(long, default_value = "field device")]
        device_name: String,
    },
    /// Send this device's visits and receive the team's grids and visits.
    Sync {
        /// Sync through another address (e.g. a team hub) instead of the enrolment server.
        #[arg(long)]
        via: Option<String>,
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

fn read_password() -> Result<String> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).context("cannot read the password from stdin")?;
    let pw = line.trim_end_matches(['\n', '\r']).to_string();
    if pw.is_empty() {
        bail!("no password on stdin; pipe it in, e.g. `echo \"$PASSWORD\" | doorstep ... --password-stdin`");
    }
    Ok(pw)
}

fn parse_gps(s: &str) -> Result<(f64, f64)> {
    let (lat, lon) = s.split_once(',').context("--gps takes LAT,LON, e.g. --gps 30.18,105.83")?;
    Ok((
        lat.trim().parse().context("--gps latitude is not a number")?,
        lon.trim().parse().context("--gps longitude is not a number")?,
    ))
}

fn parse_at(s: &str) -> Result<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&chrono::Utc))
        .with_context(|| format!("--at {s:?} is not an RFC 3339 time such as 2026-11-27T09:30:00+08:00"))
}

async fn run_task(profile: &profile::Profile, command: TaskCommand) -> Result<()> {
    match command {
        TaskCommand::Create {
            place,
            address,
            grid,
            team,
            person,
            phone,
            fraud_type,
            priority,
            deadline,
            within,
            instructions,
        } => {
            let args = tasks_cli::CreateArgs {
                place: place.as_deref(),
                address: address.as_deref(),
                grid: grid.as_deref(),
                team: team.as_deref(),
                person: &person,
                phone: phone.as_deref(),
                fraud_type: &fraud_type,
                priority: match priority {
                    PriorityArg::Urgent => "urgent",
                    PriorityArg::High => "high",
                    PriorityArg::Normal => "normal",
                },
                deadline: deadline.as_deref(),
                within: within.as_deref(),
                instructions: instructions.as_deref(),
            };
            tasks_cli::create(profile, args).await
        }
        TaskCommand::List { status, format, output } => {
            let status = match status {
                TaskStatusArg::Active => "active",
                TaskStatusArg::Open => "open",
                TaskStatusArg::Overdue => "overdue",
                TaskStatusArg::Done => "done",
                TaskStatusArg::FollowUp => "follow_up",
                TaskStatusArg::Closed => "closed",
                TaskStatusArg::All => "all",
            };
            tasks_cli::list(profile, status, format, output.as_deref()).await
        }
        TaskCommand::Show { task_id, format } => tasks_cli::show(profile, &task_id, format == ListFormat::Json).await,
        TaskCommand::Evaluate { task_id, result, comment, deadline } => {
            let result = match result {
                EvaluationArg::Effective => "effective",
                EvaluationArg::Ineffective => "ineffective",
                EvaluationArg::FollowUp => "follow-up",
            };
            tasks_cli::evaluate(profile, &task_id, result, comment.as_deref(), deadline.as_deref()).await
        }
    }
}

fn by_str(by: ByArg) -> &'static str {
    match by {
        ByArg::Town => "town",
        ByArg::Village => "village",
        ByArg::Grid => "grid",
        ByArg::Team => "team",
        ByArg::Volunteer => "volunteer",
    }
}

async fn run(cli: Cli) -> Result<()> {
    let profile = profile::Profile::new(cli.profile.clone().unwrap_or_else(profile::default_dir));
    // The profile holds the device's key and tokens: say so if someone made it readable to others.
    if !matches!(cli.command, Command::Serve(_) | Command::Admin { .. } | Command::Migrate { .. }) {
        for warning in profile.loosened() {
            eprintln!("warning: {warning}");
        }
    }
    match cli.command {
        Command::Serve(args) => serve::serve(args).await,
        Command::Admin { command: AdminCommand::Backup { data_dir, output } } => {
            serve::backup(&data_dir, &output).await
        }
        Command::Admin {
            command: AdminCommand::CreateUser { data_dir, database_url, username, role, team, area, .. },
        } => {
            let password = read_password()?;
            serve::admin_create_user(data_dir, database_url, username, role.as_str(), team, area, password).await
        }
        Command::Migrate { from, to } => serve::migrate(&from, &to).await,
        Command::Login { server, username, .. } => office::login(&profile, &server, &username, &read_password()?).await,
        Command::Territory { command: TerritoryCommand::Import { file, dry_run } } => {
            office::territory_import(&profile, &file, dry_run).await
        }
        Command::User { command: UserCommand::Create { username, role, team, area, .. } } => {
            let password = read_password()?;
            office::user_create(&profile, &username, role.as_str(), team.as_deref(), area.as_deref(), &password).await
        }
        Command::User { command: UserCommand::Disable { username } } => office::user_disable(&profile, &username).await,
        Command::User { command: UserCommand::Unlock { username } } => office::user_unlock(&profile, &username).await,
        Command::Logout => office::logout(&profile).await,
        Command::Device { command: DeviceCommand::List { format } } => office::device_list(&profile, format).await,
        Command::Device { command: DeviceCommand::Revoke { device_id } } => {
            office::device_revoke(&profile, &device_id).await
        }
        Command::Settings { command: SettingsCommand::Show } => office::settings(&profile, None).await,
        Command::Settings { command: SettingsCommand::Set { name, value } } => {
            office::settings(&profile, Some((&name, &value))).await
        }
        Command::Audit { since, format } => office::audit(&profile, since.as_deref(), format).await,
        Command::Team { command: TeamCommand::Create { name, lead } } => {
            office::team_create(&profile, &name, lead.as_deref()).await
        }
        Command::Assign { grid_code, team } => office::assign(&profile, &grid_code, &team).await,
        Command::Report { command: ReportCommand::Coverage { by, area, format, output } } => {
            office::report_coverage(&profile, by_str(by), area.as_deref(), format, output.as_deref()).await
        }
        Command::Report { command: ReportCommand::Gaps { grid, area, indicator, revisit, all, format, output } } => {
            let args = reports_cli::GapsArgs {
                grid: grid.as_deref(),
                area: area.as_deref(),
                indicator: indicator.as_deref(),
                revisit,
                all,
                format,
                output: output.as_deref(),
            };
            reports_cli::gaps(&profile, args).await
        }
        Command::Report { command: ReportCommand::Progress { area, from, to, format, output } } => {
            let args = reports_cli::RangeArgs {
                area: area.as_deref(),
                from: from.as_deref(),
                to: to.as_deref(),
                format,
                output: output.as_deref(),
            };
            reports_cli::progress(&profile, args).await
        }
        Command::Report { command: ReportCommand::Activity { by, area, from, to, format, output } } => {
            let by = match by {
                ActivityByArg::Team => "team",
                ActivityByArg::Volunteer => "volunteer",
            };
            let args = reports_cli::RangeArgs {
                area: area.as_deref(),
                from: from.as_deref(),
                to: to.as_deref(),
                format,
                output: output.as_deref(),
            };
            reports_cli::activity(&profile, by, args).await
        }
        Command::Report { command: ReportCommand::Monthly { month, area, threshold, utc_offset, format, output } } => {
            let args = reports_cli::MonthlyArgs {
                month: &month,
                area: area.as_deref(),
                threshold,
                utc_offset: utc_offset.as_deref(),
                format,
                output: output.as_deref(),
            };
            reports_cli::monthly(&profile, args).await
        }
        Command::Task { command } => run_task(&profile, command).await,
        Command::Field { command } => match command {
            FieldCommand::Login { server, username, device_name, .. } => {
                field::login(&profile, &server, &username, &read_password()?, &device_name).await
            }
            FieldCommand::Sync { via } => field::sync(&profile, via.as_deref()).await,
            FieldCommand::Places { grid, todo, format } => {
                field::places(&profile, grid.as_deref(), todo, format == ListFormat::Json)
            }
            FieldCommand::Visit {
                place_id,
                handbook,
                briefed,
                poster,
                banner,
                led_playing,
                outcome,
                note,
                at,
                gps,
            } => {
                let at = at.as_deref().map(parse_at).transpose()?;
                let outcome = outcome.map(|o| match o {
                    OutcomeArg::Completed => Outcome::Completed,
                    OutcomeArg::NobodyHome => Outcome::NobodyHome,
                    OutcomeArg::Refused => Outcome::Refused,
                    OutcomeArg::Gone => Outcome::Gone,
                });
                let input = field::VisitInput {
                    place_id,
                    deliveries: Deliveries { handbook, briefed, poster, banner, led_playing },
                    outcome,
                    note,
                    at,
                    gps: gps.as_deref().map(parse_gps).transpose()?,
                };
                field::visit(&profile, input)
            }
            FieldCommand::Status { format } => field::status(&profile, format == ListFormat::Json),
            FieldCommand::Tasks { format } => field_tasks::list(&profile, format == ListFormat::Json),
            FieldCommand::Task { task_id, format } => field_tasks::show(&profile, &task_id, format == ListFormat::Json),
            FieldCommand::TaskDone { task_id, method, reached, dissuaded, money_lost, amount, feedback, at, gps } => {
                let input = field_tasks::DoneInput {
                    task: task_id,
                    method: match method {
                        MethodArg::FaceToFace => ContactMethod::FaceToFace,
                        MethodArg::Phone => ContactMethod::Phone,
                        MethodArg::Sms => ContactMethod::Sms,
                    },
                    reached: reached.yes(),
                    dissuaded: dissuaded.yes(),
                    money_lost: money_lost.yes(),
                    amount_fen: amount
                        .as_deref()
                        .map(parse_yuan)
                        .transpose()
                        .map_err(|e| anyhow::anyhow!("--amount {e}"))?,
                    feedback,
                    at: at.as_deref().map(parse_at).transpose()?,
                    gps: gps.as_deref().map(parse_gps).transpose()?,
                };
                field_tasks::done(&profile, input)
            }
            FieldCommand::AddPlace { grid, kind, label, address, gps } => {
                let input = field_found::NewPlace {
                    grid,
                    kind: kind.parse()?,
                    label,
                    address,
                    gps: gps.as_deref().map(parse_gps).transpose()?,
                };
                field_found::add_place(&profile, input)
            }
            FieldCommand::Correct { place_id, label, address } => {
                field_found::correct(&profile, &place_id, label, address)
            }
        },
        Command::Hub { command: HubCommand::Serve(args) } => hub::serve(&profile, args).await,
        Command::Hub { command: HubCommand::Sync } => hub::sync(&profile).await,
        Command::Hub { command: HubCommand::Certificate(args) } => hub_tls::command(&profile, args).await,
        Command::Place { command } => match command {
            PlaceCommand::Review { grid, format } => {
                let format = if format == ListFormat::Json { output::Format::Json } else { output::Format::Table };
                review_cli::review(&profile, grid.as_deref(), format).await
            }
            PlaceCommand::Confirm { id } => review_cli::decide(&profile, &id, review_cli::Decision::Confirm).await,
            PlaceCommand::Reject { id } => review_cli::decide(&profile, &id, review_cli::Decision::Reject).await,
            PlaceCommand::Merge { id, into } => {
                review_cli::decide(&profile, &id, review_cli::Decision::MergeInto(&into)).await
            }
        },
    }
}

/// Lowers the calling thread's priority by `server::store::db::RUNTIME_NICE`: the runtime's threads of `serve` on
/// SQLite, so that the thread driving the write transaction, and SQLite's writing connection, get a CPU first.
/// On Linux a thread's priority is its own (elsewhere this would lower the whole process, so it is left alone).
fn yield_to_the_writer() {
    #[cfg(target_os = "linux")]
    // SAFETY: nice() only reads its integer argument and changes the calling thread's priority.
    unsafe {
        libc::nice(server::store::db::RUNTIME_NICE);
    }
}

fn main() {
    let cli = Cli::parse();
    // Behave like other command-line tools when output is piped into `head`: exit quietly. Not the server: a
    // client that goes away while a response is being written would kill it.
    #[cfg(unix)]
    if !matches!(cli.command, Command::Serve(_)) {
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    let filter =
        tracing_subscriber::EnvFilter::try_from_env("DOORSTEP_LOG").unwrap_or_else(|_| "info,sqlx=warn".into());
    // Colour only on a terminal: escape codes in `doorstep serve > serve.log` make log files unreadable.
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(colour);
    // Structured logs for collectors: one JSON object per line.
    if std::env::var("DOORSTEP_LOG_FORMAT").is_ok_and(|f| f == "json") {
        logs.json().init();
    } else {
        logs.init();
    }
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    runtime.enable_all();
    if matches!(&cli.command, Command::Serve(args) if args.on_sqlite()) {
        runtime.on_thread_start(yield_to_the_writer);
    }
    let runtime = runtime.build().expect("tokio runtime");
    if let Err(e) = runtime.block_on(run(cli)) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
