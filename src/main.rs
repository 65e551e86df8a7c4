//! `doorstep`: the one binary — server, office client and offline field client.

mod cli;
mod office;
mod output;
mod serve;

use anyhow::{bail, Context, Result};
use client_core::docs::Registry;

/// The server allocates and frees many small objects per sync (automerge operations, rows, buffers); glibc's
/// allocator spent about a sixth of the server's CPU on it under load, mimalloc a fraction of that.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use clap::Parser;
use cli::*;
use client_core::grid::model::{Deliveries, Outcome};
use client_core::task::model::{parse_yuan, ContactMethod};
use field::{device, hub, profile};
use std::io::BufRead;

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
            let args = office::tasks::CreateArgs {
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
            office::tasks::create(profile, args).await
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
            office::tasks::list(profile, status, format, output.as_deref()).await
        }
        TaskCommand::Show { task_id, format } => {
            office::tasks::show(profile, &task_id, format == ListFormat::Json).await
        }
        TaskCommand::Evaluate { task_id, result, comment, deadline } => {
            let result = match result {
                EvaluationArg::Effective => "effective",
                EvaluationArg::Ineffective => "ineffective",
                EvaluationArg::FollowUp => "follow-up",
            };
            office::tasks::evaluate(profile, &task_id, result, comment.as_deref(), deadline.as_deref()).await
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
        Command::Bulletin { command } => match command {
            BulletinCommand::Publish(args) => office::bulletins::publish(&profile, &args).await,
            BulletinCommand::List { format } => office::bulletins::list(&profile, format == ListFormat::Json).await,
            BulletinCommand::Correct { id, bulletin } => office::bulletins::correct(&profile, &id, &bulletin).await,
            BulletinCommand::Withdraw { id } => office::bulletins::withdraw(&profile, &id).await,
            BulletinCommand::Receipts { days, format, output, id } => {
                office::bulletins::receipts(&profile, &id, days, format, output.as_deref()).await
            }
        },
        Command::Campaign { command: CampaignCommand::Show } => office::campaign::show(&profile).await,
        Command::Campaign { command: CampaignCommand::Check { file } } => office::campaign::check(&file),
        Command::Campaign { command: CampaignCommand::Apply { file, dry_run } } => {
            office::campaign::apply(&profile, &file, dry_run).await
        }
        Command::Territory { command: TerritoryCommand::Import { file, dry_run } } => {
            office::territory_import(&profile, &file, dry_run).await
        }
        Command::User { command: UserCommand::Create { username, role, team, area, .. } } => {
            let password = read_password()?;
            office::user_create(&profile, &username, role.as_str(), team.as_deref(), area.as_deref(), &password).await
        }
        Command::User { command: UserCommand::Disable { username } } => office::user_disable(&profile, &username).await,
        Command::User { command: UserCommand::Unlock { username } } => office::user_unlock(&profile, &username).await,
        Command::User { command: UserCommand::List { team, role, search, format } } => {
            let filter = office::people::UserFilter {
                team: team.as_deref(),
                role: role.map(RoleArg::as_str),
                search: search.as_deref(),
            };
            office::people::user_list(&profile, &filter, format).await
        }
        Command::User { command: UserCommand::Edit { username, role, team, no_team, area, may_publish } } => {
            let team = if no_team { Some(None) } else { team.map(Some) };
            let edit = office::people::UserEdit { role: role.map(RoleArg::as_str), team, area, may_publish };
            office::people::user_edit(&profile, &username, edit).await
        }
        Command::User { command: UserCommand::Enable { username } } => {
            office::people::user_enable(&profile, &username).await
        }
        Command::User { command: UserCommand::Password { username, password_stdin } } => {
            let password = if password_stdin { Some(read_password()?) } else { None };
            office::people::user_password(&profile, &username, password).await
        }
        Command::Team { command: TeamCommand::List { format } } => office::people::team_list(&profile, format).await,
        Command::Team { command: TeamCommand::Lead { name, username, none } } => {
            office::people::team_lead(&profile, &name, if none { None } else { username.as_deref() }).await
        }
        Command::Grid { command: GridCommand::List { unassigned, village, team, format } } => {
            let filter = office::people::GridFilter { unassigned, village: village.as_deref(), team: team.as_deref() };
            office::people::grid_list(&profile, &filter, format).await
        }
        Command::Unassign { grid_code } => office::people::unassign(&profile, &grid_code).await,
        Command::Logout => office::logout(&profile).await,
        Command::Device { command: DeviceCommand::List { format } } => office::device_list(&profile, format).await,
        Command::Device { command: DeviceCommand::Revoke { device_id } } => {
            office::device_revoke(&profile, &device_id).await
        }
        Command::Enrolment { command } => match command {
            EnrolmentCommand::Issue { team, user, shared, hours, address, format } => {
                let who = match (&team, shared) {
                    (Some(team), Some(uses)) => office::enrolment::For::Shared { team, uses },
                    (Some(team), None) => office::enrolment::For::Team(team),
                    (None, _) => office::enrolment::For::Users(&user),
                };
                office::enrolment::issue(&profile, who, hours, address.as_deref(), format).await
            }
            EnrolmentCommand::List { format } => office::enrolment::list(&profile, format).await,
            EnrolmentCommand::Revoke { id } => office::enrolment::revoke(&profile, &id).await,
        },
        Command::Settings { command: SettingsCommand::Show } => office::settings(&profile, None).await,
        Command::Settings { command: SettingsCommand::Set { name, value } } => {
            office::settings(&profile, Some((&name, &value))).await
        }
        Command::Audit { since, until, user, action, newest, limit, format } => {
            let filter = office::AuditArgs {
                since: since.as_deref(),
                until: until.as_deref(),
                user: user.as_deref(),
                action: action.as_deref(),
                newest,
                limit,
            };
            office::audit(&profile, &filter, format).await
        }
        Command::Team { command: TeamCommand::Create { name, lead } } => {
            office::team_create(&profile, &name, lead.as_deref()).await
        }
        Command::Assign { grid_codes, village, team } => match (&grid_codes[..], village) {
            ([grid], None) => office::assign(&profile, grid, &team).await,
            (_, village) => office::people::assign(&profile, &team, village.as_deref(), &grid_codes).await,
        },
        Command::Report { command: ReportCommand::Coverage { by, area, format, output } } => {
            office::report_coverage(&profile, by_str(by), area.as_deref(), format, output.as_deref()).await
        }
        Command::Report { command: ReportCommand::Gaps { grid, area, indicator, revisit, all, format, output } } => {
            let args = office::reports::GapsArgs {
                grid: grid.as_deref(),
                area: area.as_deref(),
                indicator: indicator.as_deref(),
                revisit,
                all,
                format,
                output: output.as_deref(),
            };
            office::reports::gaps(&profile, args).await
        }
        Command::Report { command: ReportCommand::Progress { area, from, to, format, output } } => {
            let args = office::reports::RangeArgs {
                area: area.as_deref(),
                from: from.as_deref(),
                to: to.as_deref(),
                format,
                output: output.as_deref(),
            };
            office::reports::progress(&profile, args).await
        }
        Command::Report { command: ReportCommand::Activity { by, area, from, to, format, output } } => {
            let by = match by {
                ActivityByArg::Team => "team",
                ActivityByArg::Volunteer => "volunteer",
            };
            let args = office::reports::RangeArgs {
                area: area.as_deref(),
                from: from.as_deref(),
                to: to.as_deref(),
                format,
                output: output.as_deref(),
            };
            office::reports::activity(&profile, by, args).await
        }
        Command::Report { command: ReportCommand::Monthly { month, area, threshold, utc_offset, format, output } } => {
            let args = office::reports::MonthlyArgs {
                month: &month,
                area: area.as_deref(),
                threshold,
                utc_offset: utc_offset.as_deref(),
                format,
                output: output.as_deref(),
            };
            office::reports::monthly(&profile, args).await
        }
        Command::Task { command } => run_task(&profile, command).await,
        Command::Roster { command } => office::submissions::roster(&profile, command).await,
        Command::Submissions { command } => office::submissions::submissions(&profile, command).await,
        Command::Field { command } => match command {
            FieldCommand::Login { server, username, code, member, device_name, password_stdin } => {
                if username.is_some() && !password_stdin {
                    bail!("--username needs --password-stdin (the password is read from standard input)");
                }
                let password = if username.is_some() { read_password()? } else { String::new() };
                let enrolment = match (&username, &code) {
                    (Some(username), None) => device::Enrolment::Password { username, password: &password },
                    _ => device::Enrolment::Code {
                        code: code.as_deref().expect("clap requires --code or --username"),
                        member: member.as_deref(),
                    },
                };
                device::login(&profile, &server, enrolment, &device_name).await
            }
            FieldCommand::Sync { via, skip_photos } => {
                let photos = if skip_photos { device::PhotoUploads::Later } else { device::PhotoUploads::Now };
                device::sync_then(&profile, via.as_deref(), &Registry::of_doorstep(), photos).await
            }
            FieldCommand::Places { grid, todo, format } => {
                device::places(&profile, grid.as_deref(), todo, format == ListFormat::Json)
            }
            FieldCommand::Visit {
                place_id,
                deliver,
                handbook,
                briefed,
                poster,
                banner,
                led_playing,
                outcome,
                note,
                at,
                gps,
                photos,
            } => {
                let at = at.as_deref().map(parse_at).transpose()?;
                let outcome = outcome.map(|o| match o {
                    OutcomeArg::Completed => Outcome::Completed,
                    OutcomeArg::NobodyHome => Outcome::NobodyHome,
                    OutcomeArg::Refused => Outcome::Refused,
                    OutcomeArg::Gone => Outcome::Gone,
                });
                let mut deliveries = Deliveries::of_flags([handbook, briefed, poster, banner, led_playing]);
                for id in deliver.iter().map(|d| d.trim()).filter(|d| !d.is_empty()) {
                    deliveries.insert(id);
                }
                let input = device::VisitInput {
                    place_id,
                    deliveries,
                    outcome,
                    note,
                    at,
                    gps: gps.as_deref().map(parse_gps).transpose()?,
                    photos,
                };
                device::visit(&profile, input)
            }
            FieldCommand::Status { format } => device::status(&profile, format == ListFormat::Json),
            FieldCommand::Bulletins { format } => device::bulletins::list(&profile, format == ListFormat::Json),
            FieldCommand::Read { id } => device::bulletins::read(&profile, &id),
            FieldCommand::Tasks { format } => device::tasks::list(&profile, format == ListFormat::Json),
            FieldCommand::Task { task_id, format } => {
                device::tasks::show(&profile, &task_id, format == ListFormat::Json)
            }
            FieldCommand::TaskDone { task_id, method, reached, dissuaded, money_lost, amount, feedback, at, gps } => {
                let input = device::tasks::DoneInput {
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
                device::tasks::done(&profile, input)
            }
            FieldCommand::AddPlace { grid, kind, label, address, gps } => {
                let input = device::found::NewPlace {
                    grid,
                    kind,
                    label,
                    address,
                    gps: gps.as_deref().map(parse_gps).transpose()?,
                };
                device::found::add_place(&profile, input)
            }
            FieldCommand::Correct { place_id, label, address } => {
                device::found::correct(&profile, &place_id, label, address)
            }
        },
        Command::Hub { command: HubCommand::Serve(args) } => {
            hub::serve(&profile, args.into(), serve::shutdown_signal()).await
        }
        Command::Hub { command: HubCommand::Sync } => hub::sync(&profile, &Registry::of_doorstep()).await,
        Command::Hub { command: HubCommand::Certificate(args) } => hub::tls::command(&profile, args.into()).await,
        Command::Photo { command } => match command {
            PhotoCommand::List { area, place, indicator, state, limit, format, output } => {
                let state = match state {
                    PhotoStateArg::All => "all",
                    PhotoStateArg::Standing => "standing",
                    PhotoStateArg::Rejected => "rejected",
                };
                let filter = office::photos::Filter {
                    area: area.as_deref(),
                    place: place.as_deref(),
                    indicator: indicator.as_deref(),
                    state,
                    limit,
                };
                office::photos::list(&profile, &filter, format, output.as_deref()).await
            }
            PhotoCommand::Evidence { area, format, output } => {
                office::photos::evidence(&profile, area.as_deref(), format, output.as_deref()).await
            }
            PhotoCommand::Get { sha256, out, thumbnail } => {
                office::photos::get(&profile, &sha256, &out, thumbnail).await
            }
            PhotoCommand::Reject { sha256, visit, reason } => {
                office::photos::reject(&profile, &sha256, &visit, &reason).await
            }
        },
        Command::Place { command } => match command {
            PlaceCommand::Review { grid, format } => {
                let format = if format == ListFormat::Json { output::Format::Json } else { output::Format::Table };
                office::places::review(&profile, grid.as_deref(), format).await
            }
            PlaceCommand::Confirm { id } => {
                office::places::decide(&profile, &id, office::places::Decision::Confirm).await
            }
            PlaceCommand::Reject { id } => {
                office::places::decide(&profile, &id, office::places::Decision::Reject).await
            }
            PlaceCommand::Merge { id, into } => {
                office::places::decide(&profile, &id, office::places::Decision::MergeInto(&into)).await
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
