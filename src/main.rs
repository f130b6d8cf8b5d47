//! The `loa` command line: serve, migrate, demo, report.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use loa::app::{App, open_store, shutdown_signal};
use loa::config::Config;
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(
    name = "loa",
    version,
    about = "Message broadcasting gateway for Vietnamese education"
)]
struct Cli {
    /// Configuration file (TOML). Without it, the embedded defaults: SQLite in ./loa-data, local sinks.
    #[arg(long, short, global = true, env = "LOA_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon: HTTP API, scheduler and dispatcher.
    Serve,
    /// Create or update the database schema, then exit.
    Migrate,
    /// Generate a demo district, run two campaigns through local sinks and print a summary.
    Demo {
        /// Folder for the demo database and the sinks' output (emptied first).
        #[arg(long, default_value = "loa-demo")]
        dir: PathBuf,
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// Exit 0 once every delivery reached a final state, instead of serving the API.
        #[arg(long)]
        exit_when_done: bool,
    },
    /// Print the per-channel and per-school summary of a campaign.
    Report { campaign_id: i64 },
    /// Import data from files.
    Import {
        #[command(subcommand)]
        command: ImportCommand,
    },
    /// Users of the API (bootstrap the first operator here).
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Campaigns.
    Campaign {
        #[command(subcommand)]
        command: CampaignCommand,
    },
    /// The database itself: move a district from one store to another.
    Store {
        #[command(subcommand)]
        command: StoreCommand,
    },
    /// Zalo Official Account administration.
    Zalo {
        #[command(subcommand)]
        command: ZaloCommand,
    },
    /// Measure throughput, fan-out, memory, rate-limit accuracy and latency (see docs/PERFORMANCE.md).
    Bench {
        /// People in the end-to-end run (and requests in the ceiling run).
        #[arg(long, default_value_t = 100_000)]
        people: usize,
        /// Audience size for the fan-out and peak-memory run.
        #[arg(long, default_value_t = 1_000_000)]
        fanout_people: usize,
        /// Length of the rate-limit run at 200 messages/s.
        #[arg(long, default_value_t = 30)]
        rate_seconds: u64,
        /// Single-person campaigns in the latency run.
        #[arg(long, default_value_t = 200)]
        urgent: usize,
        /// Audience size of the reach-and-cost preview.
        #[arg(long, default_value_t = 50_000)]
        preview_people: usize,
        /// Messages in each run of parts 7 and 8 (real smtp-sink, real Kannel).
        #[arg(long, default_value_t = 20_000)]
        real_people: usize,
        /// Rows of the roster export in part 9 (the default: 50,000 students in 50 class sheets,
        /// each with its 7 title, header, total and signature rows).
        #[arg(long, default_value_t = 50_350)]
        import_rows: usize,
        /// Only these parts (1-10; 10: two instances on one database), comma-separated.
        #[arg(long, value_delimiter = ',')]
        parts: Vec<u8>,
        /// Scratch folder for the benchmark databases (on disk).
        #[arg(long, default_value = "target/bench")]
        dir: PathBuf,
        /// Measure on this PostgreSQL server (postgres://...; each part in a schema of its own)
        /// instead of SQLite files.
        #[arg(long)]
        database: Option<String>,
        /// Also write the figures as JSON.
        #[arg(long)]
        json: Option<PathBuf>,
    },
    /// The benchmark's provider double (started by `bench` itself).
    #[command(hide = true)]
    BenchDouble {
        #[arg(long)]
        listen: SocketAddr,
    },
    /// Runs a command and prints its peak RSS after its output (started by `bench` itself, so
    /// that the measured process is forked from a small one).
    #[command(hide = true)]
    BenchMeasure {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<String>,
    },
}

#[derive(Subcommand)]
enum ImportCommand {
    /// Import a class roster (.csv or .xlsx) into a school: students, classes, parents and links;
    /// or a staff list into any node. Every sheet that holds a list is read.
    Contacts {
        file: PathBuf,
        /// The node's code (a school for a roster).
        #[arg(long)]
        org: String,
        /// Read only this sheet of an .xlsx file (default: every sheet that holds a list).
        #[arg(long)]
        sheet: Option<String>,
        /// A CSV's text encoding: utf-8, utf-16, windows-1258, tcvn3 (default: detected).
        #[arg(long)]
        encoding: Option<String>,
        /// The file is a staff list (default: each sheet's columns and title tell).
        #[arg(long)]
        staff: bool,
        /// Say what would be created, updated and rejected, and write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Write a copy of the file with an error column ("Lỗi cần sửa") to this .xlsx.
        #[arg(long, value_name = "FILE")]
        errors_xlsx: Option<PathBuf>,
        /// Print the report as JSON (as the API answers) instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a user at a node (or, without --org, an operator of the whole installation).
    Create {
        #[arg(long)]
        username: String,
        #[arg(long)]
        name: String,
        /// The code of the user's node; absent = installation operator.
        #[arg(long)]
        org: Option<String>,
        /// Comma-separated: admin, author, approver, viewer.
        #[arg(long)]
        roles: String,
        /// Read a password for the web pages from standard input (first line).
        #[arg(long)]
        password_stdin: bool,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create an API token for a user and print it (it is shown only this once).
    Create {
        #[arg(long)]
        username: String,
        /// What the token is for (a label).
        #[arg(long, default_value = "cli")]
        name: String,
    },
}

#[derive(Subcommand)]
enum CampaignCommand {
    /// Reach and cost of a campaign before it is submitted (nothing is written).
    Preview { id: i64 },
    /// Start an approved campaign (now, or at its send_at) as a user.
    Start {
        id: i64,
        /// The acting user (an author or approver whose node covers the campaign).
        #[arg(long = "as")]
        username: String,
    },
}

#[derive(Subcommand)]
enum StoreCommand {
    /// Copy everything (tree, contacts, campaigns, runs, deliveries and their history, users, tokens,
    /// audit, the Zalo token pair) into a new, empty database, for example from SQLite to
    /// PostgreSQL; counts are verified table by table. Stop `loa serve` on the source first.
    Copy {
        /// The source: sqlite:///var/lib/loa/loa.db, a plain path, or postgres://...
        #[arg(long)]
        from: String,
        /// The target, created and migrated if needed; refused if it holds any row.
        #[arg(long)]
        to: String,
    },
}

#[derive(Subcommand)]
enum ZaloCommand {
    /// Store a new token pair for a Zalo app (after re-authorising the OA), replacing the stored one.
    /// Pass the tokens through the environment so they stay out of the shell history.
    SetToken {
        #[arg(long)]
        app_id: String,
        #[arg(long, env = "LOA_ZALO_ACCESS_TOKEN", hide_env_values = true)]
        access_token: String,
        #[arg(long, env = "LOA_ZALO_REFRESH_TOKEN", hide_env_values = true)]
        refresh_token: String,
        /// Seconds the access token is valid for (Zalo's `expires_in`); unknown when absent.
        #[arg(long)]
        expires_in: Option<i64>,
    },
}

fn init_tracing(quiet: bool) {
    let default = if quiet { "warn" } else { "loa=info,warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_env("LOA_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // Colour codes only for a person at a terminal; journald and log collectors get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    match std::env::var("LOA_LOG_FORMAT").as_deref() {
        // One JSON object per line, for log collectors (Loki, Elasticsearch, journald's JSON).
        Ok("json") => builder.json().with_current_span(false).init(),
        Ok("text") | Err(_) => builder.init(),
        Ok(other) => {
            builder.init();
            tracing::warn!(
                value = other,
                "LOA_LOG_FORMAT is neither json nor text; using text"
            );
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Demo {
            dir,
            listen,
            exit_when_done,
        } => {
            loa::demo::run(loa::demo::DemoOptions {
                dir,
                listen,
                exit_when_done,
            })
            .await
        }
        Command::Migrate => {
            let cfg = Config::load(cli.config.as_deref())?;
            open_store(&cfg).await?;
            println!(
                "database schema is up to date ({})",
                loa::store::display_url(&cfg.database.url)
            );
            Ok(())
        }
        Command::Store {
            command: StoreCommand::Copy { from, to },
        } => {
            let started = std::time::Instant::now();
            // Opening a SQLite path creates the file: a mistyped --from would copy an empty,
            // freshly made database and report success.
            let path = from
                .strip_prefix("sqlite://")
                .or_else(|| from.strip_prefix("sqlite:"))
                .or((!from.contains("://")).then_some(from.as_str()));
            if let Some(p) = path.map(|p| p.split('?').next().unwrap_or(p))
                && !std::path::Path::new(p).exists()
            {
                anyhow::bail!("--from: no database at {p}");
            }
            for url in [&from, &to] {
                let store = loa::store::open(url).await?;
                store.migrate().await?;
            }
            let mut total = 0;
            loa::store::copy::copy_store(&from, &to, &mut |t| {
                total += t.rows;
                println!("{:<18} {:>10} rows", t.table, t.rows);
            })
            .await?;
            println!(
                "copied {total} rows from {} to {} in {:.1} s; every table's count verified",
                loa::store::display_url(&from),
                loa::store::display_url(&to),
                started.elapsed().as_secs_f64()
            );
            Ok(())
        }
        Command::Serve => {
            let cfg = Config::load(cli.config.as_deref())?;
            let app = App::build(&cfg).await?;
            for (c, p) in &app.state.registry.sink_locations {
                tracing::warn!(channel = %c, path = %p.display(), "channel goes to a local sink, nothing is really sent");
            }
            tracing::info!(addr = %app.addr, channels = ?app.state.registry.channels(), "loa serving");
            let shutdown = CancellationToken::new();
            let running = app.spawn(shutdown.clone());
            shutdown_signal().await;
            shutdown.cancel();
            running.join().await
        }
        Command::Bench {
            people,
            fanout_people,
            rate_seconds,
            urgent,
            preview_people,
            real_people,
            import_rows,
            parts,
            dir,
            json,
            database,
        } => {
            let opts = loa::bench::BenchOptions {
                people,
                fanout_people,
                rate_seconds,
                urgent,
                preview_people,
                real_people,
                import_rows,
                dir,
                json,
                parts,
                database,
            };
            let report = loa::bench::run(opts).await?;
            print!("{}", loa::bench::table(&report));
            Ok(())
        }
        Command::BenchDouble { listen } => loa::bench::double::serve(listen).await,
        Command::BenchMeasure { command } => loa::bench::import::measure(&command),
        Command::Report { campaign_id } => {
            let cfg = Config::load(cli.config.as_deref())?;
            let store = open_store(&cfg).await?;
            let c = store
                .get_campaign(campaign_id)
                .await
                .map_err(|_| anyhow::anyhow!("không tìm thấy chiến dịch {campaign_id}"))?;
            let rows = store.summary_by_org(&[campaign_id]).await?;
            let progress = store.progress(campaign_id).await?;
            print!(
                "\nTheo kênh\n{}",
                loa::report::render_channels(&loa::report::by_channel(&progress))
            );
            print!(
                "{}",
                loa::report::render_table(
                    &format!(
                        "Chiến dịch #{campaign_id}: {} ({})",
                        c.name,
                        c.state.as_str()
                    ),
                    &loa::report::by_org(&rows)
                )
            );
            Ok(())
        }
        Command::Import {
            command:
                ImportCommand::Contacts {
                    file,
                    org,
                    sheet,
                    encoding,
                    staff,
                    dry_run,
                    errors_xlsx,
                    json,
                },
        } => {
            let encoding = match encoding.as_deref() {
                Some(e) => Some(loa::import::Encoding::parse(e).ok_or_else(|| {
                    anyhow::anyhow!(
                        "không biết bảng mã \"{e}\": dùng utf-8, utf-16, windows-1258 hoặc tcvn3"
                    )
                })?),
                None => None,
            };
            let opts = loa::import::ImportOptions {
                sheet,
                encoding,
                kind: staff.then_some(loa::import::ListKind::Staff),
                dry_run,
            };
            import_contacts(
                cli.config.as_deref(),
                &file,
                &org,
                &opts,
                errors_xlsx.as_deref(),
                json,
            )
            .await
        }
        Command::User {
            command:
                UserCommand::Create {
                    username,
                    name,
                    org,
                    roles,
                    password_stdin,
                },
        } => {
            let cfg = Config::load(cli.config.as_deref())?;
            let store = open_store(&cfg).await?;
            let password = if password_stdin {
                let mut line = String::new();
                std::io::stdin().read_line(&mut line)?;
                Some(line.trim_end_matches(['\r', '\n']).to_string())
            } else {
                None
            };
            let id = loa::admin::user_create(
                store.as_ref(),
                &username,
                &name,
                org.as_deref(),
                &roles,
                password,
            )
            .await?;
            println!("Đã tạo tài khoản {username} (id {id}).");
            Ok(())
        }
        Command::Token {
            command: TokenCommand::Create { username, name },
        } => {
            let cfg = Config::load(cli.config.as_deref())?;
            let store = open_store(&cfg).await?;
            let token = loa::admin::token_create(store.as_ref(), &username, &name).await?;
            eprintln!("Mã truy cập của {username} (chỉ hiện một lần, hãy lưu lại):");
            println!("{token}");
            Ok(())
        }
        Command::Campaign {
            command: CampaignCommand::Preview { id },
        } => {
            let cfg = Config::load(cli.config.as_deref())?;
            let store = open_store(&cfg).await?;
            print!(
                "{}",
                loa::admin::campaign_preview(store.as_ref(), &cfg, id).await?
            );
            Ok(())
        }
        Command::Campaign {
            command: CampaignCommand::Start { id, username },
        } => {
            let cfg = Config::load(cli.config.as_deref())?;
            let store = open_store(&cfg).await?;
            let c = loa::admin::campaign_start(store, &username, id).await?;
            println!("Chiến dịch #{id} ({}): {}", c.name, c.state.as_str());
            Ok(())
        }
        Command::Zalo {
            command:
                ZaloCommand::SetToken {
                    app_id,
                    access_token,
                    refresh_token,
                    expires_in,
                },
        } => {
            let cfg = Config::load(cli.config.as_deref())?;
            let store = open_store(&cfg).await?;
            let now = loa::clock::now_ms();
            let pair = loa::store::TokenPair {
                access_token: access_token.trim().to_string(),
                refresh_token: refresh_token.trim().to_string(),
                expires_at_ms: expires_in.map(|s| now + s * 1000).unwrap_or(0),
            };
            if pair.access_token.is_empty() || pair.refresh_token.is_empty() {
                anyhow::bail!("access token và refresh token không được để trống");
            }
            store.set_zalo_token(app_id.trim(), &pair, now).await?;
            println!(
                "Đã lưu token Zalo cho ứng dụng {app_id}. Loa đang chạy sẽ chuyển sang token mới ngay khi Zalo từ chối token cũ."
            );
            Ok(())
        }
    }
}

async fn import_contacts(
    config: Option<&std::path::Path>,
    file: &std::path::Path,
    org: &str,
    opts: &loa::import::ImportOptions,
    errors_xlsx: Option<&std::path::Path>,
    json: bool,
) -> anyhow::Result<()> {
    let cfg = Config::load(config)?;
    let store = open_store(&cfg).await?;
    let bytes = std::fs::read(file)
        .map_err(|e| anyhow::anyhow!("không đọc được tệp {}: {e}", file.display()))?;
    let (org_id, _) = loa::admin::org_by_code(store.as_ref(), org).await?;
    let node = store.get_org(org_id).await?;
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} dòng ({eta})")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let report = loa::import::import_file(store.as_ref(), node.id, &bytes, opts, |done, total| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    })
    .await
    .map_err(|e| match e {
        loa::import::ImportError::NotASchool => {
            anyhow::anyhow!(
                "{} không phải trường học: danh sách học sinh chỉ nhập vào một trường",
                node.name
            )
        }
        // Pieces of 2,000 rows commit one by one: say how far it got, and that running it again
        // finishes it (an import of the same file creates nobody twice).
        loa::import::ImportError::Store(e) if !opts.dry_run => anyhow::anyhow!(
            "lỗi cơ sở dữ liệu khi nhập ({e}); đã lưu {}/{} dòng đầu. Hãy chạy lại lệnh này để nhập nốt: nhập lại cùng tệp không tạo trùng ai",
            bar.position(),
            bar.length().unwrap_or(0)
        ),
        e => anyhow::anyhow!("{e}"),
    })?;
    bar.finish_and_clear();
    if !opts.dry_run {
        store
            .audit(
                &loa::admin::shell_entry(
                    Some(node.id),
                    "contacts.import",
                    "org",
                    Some(node.id),
                    serde_json::json!({"rows": report.rows, "imported": report.imported, "rejected": report.rejected.len(), "cell_errors": report.cell_errors.len()}),
                ),
                loa::clock::now_ms(),
            )
            .await?;
    }
    if json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print!("{}", loa::import::summary::text(&node.name, &report));
    }
    if let Some(out) = errors_xlsx {
        let book =
            loa::import::error_workbook(&bytes, &report).map_err(|e| anyhow::anyhow!("{e}"))?;
        std::fs::write(out, book)
            .map_err(|e| anyhow::anyhow!("không ghi được tệp {}: {e}", out.display()))?;
        if !json {
            println!(
                "Đã ghi bản sao của tệp kèm cột \"Lỗi cần sửa\" vào {}.",
                out.display()
            );
        }
    }
    Ok(())
}

/// mimalloc instead of glibc's malloc for Rust's allocations: a message's life allocates many small
/// strings across threads (claimed rows, rendered text, requests), and glibc's malloc and free were
/// about a tenth of a full-speed run's samples (docs/PERFORMANCE.md). SQLite keeps glibc's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    init_tracing(matches!(
        cli.command,
        Command::Bench { .. } | Command::BenchDouble { .. } | Command::BenchMeasure { .. }
    ));
    if let Err(e) = run(cli).await {
        // A full or failing disk is the operator's to fix, and staff must know nothing was saved.
        if let Some(loa::store::StoreError::Unavailable(detail)) = e
            .chain()
            .find_map(|c| c.downcast_ref::<loa::store::StoreError>())
        {
            eprintln!(
                "loa: không ghi được vào cơ sở dữ liệu (ổ đĩa đầy hoặc lỗi lưu trữ); chưa có gì được lưu, hãy thử lại khi đã giải phóng dung lượng ({detail})"
            );
            std::process::exit(1);
        }
        eprintln!("loa: {e:#}");
        std::process::exit(1);
    }
}
