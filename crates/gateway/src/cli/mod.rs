//! The `platform` command line: `serve`, `migrate`, `seed`, `audit verify`, `catalog
//! import`, `export-schema`.

mod args;

use self::args::{
    AuditCommand, BillingCommand, CatalogCommand, Cli, Command, JobsCommand,
    PersistedQueriesCommand, PrivacyCommand, RecordFormat, StaffCommand,
};

use crate::config::Config;
use crate::dev::seed;
use crate::startup::{AppState, Application};
use crate::{catalog, graphql, telemetry};
use anyhow::Context;
use clap::Parser;
use kernel::{Db, SystemClock};
use migration::{Migrator, MigratorTrait};
use std::sync::Arc;

/// Entry point of the binary.
pub fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // Before the runtime: the exporter's HTTP client may not start inside one.
    let traces = cli
        .config
        .telemetry
        .otel_exporter_otlp_endpoint
        .as_deref()
        .filter(|endpoint| !endpoint.is_empty())
        .map(telemetry::otlp_provider)
        .transpose()?;
    telemetry::init(
        &cli.config.telemetry.log_filter,
        cli.config.telemetry.log_format,
        std::io::stdout,
        traces.as_ref(),
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let outcome = runtime.block_on(run(cli));
    drop(runtime);
    if let Some(traces) = traces {
        // The last batch of spans; a collector that is gone costs the exporter's timeout.
        if let Err(error) = traces.shutdown() {
            tracing::warn!(error = %error, "the last spans could not be exported");
        }
    }
    outcome
}

/// The services, for an operator command; on SQLite pending migrations are applied first
/// (PostgreSQL migrates explicitly, as the owner role).
async fn services(config: &Config) -> anyhow::Result<AppState> {
    let db = connect(&config.database.url).await?;
    migrate_sqlite(&db).await?;
    state_on(config, db).await
}

/// The services on the database as it is (checking it, say): nothing is migrated.
async fn services_unmigrated(config: &Config) -> anyhow::Result<AppState> {
    state_on(config, connect(&config.database.url).await?).await
}

/// The services for an operator's action the application role may not do (making
/// someone platform staff): connected with `MIGRATE_DATABASE_URL`, the owner role.
pub async fn operator_services(config: &Config) -> anyhow::Result<AppState> {
    let db = connect(config.database.migration_url()).await?;
    migrate_sqlite(&db).await?;
    state_on(config, db).await
}

/// A small pool for one command.
async fn connect(url: &str) -> anyhow::Result<Db> {
    Db::connect(url, 4)
        .await
        .context("connecting to the database")
}

/// Applies pending migrations to a SQLite database (PostgreSQL migrates explicitly).
async fn migrate_sqlite(db: &Db) -> anyhow::Result<()> {
    if db.backend() == kernel::Backend::Sqlite {
        Migrator::up(db.conn(), None)
            .await
            .context("applying migrations")?;
    }
    Ok(())
}

async fn state_on(config: &Config, db: Db) -> anyhow::Result<AppState> {
    AppState::new(
        db,
        Arc::new(SystemClock),
        crate::startup::ServiceSettings::from_config(config)?,
    )
    .await
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = cli.config;
    match cli.command {
        Command::Serve => {
            let app = Application::build(&config, Arc::new(SystemClock)).await?;
            app.run_until_stopped().await
        }
        Command::Migrate => {
            let db = Db::connect(config.database.migration_url(), 2)
                .await
                .context("connecting to the database")?;
            Migrator::up(db.conn(), None)
                .await
                .context("applying migrations")?;
            tracing::info!("migrations applied");
            Ok(())
        }
        Command::Seed => {
            let state = services(&config).await?;
            match seed::seed(&state).await? {
                seed::Seeded::Created => tracing::info!("demo data created"),
                seed::Seeded::AlreadyPresent => tracing::info!("demo data already present"),
            }
            Ok(())
        }
        Command::Audit {
            command: AuditCommand::Verify { org, hash_here },
        } => {
            let state = services_unmigrated(&config).await?;
            let orgs = match org {
                Some(org) => vec![kernel::OrgId::from_uuid(org)],
                None => state.tenancy.all_organization_ids().await?,
            };
            let mut broken = 0;
            for org in orgs {
                let hashing = if hash_here {
                    audit::Hashing::Here
                } else {
                    audit::Hashing::InDatabase
                };
                let report = state.tenancy.verify_audit_chain(org, hashing).await?;
                let unsealed = match report.unsealed {
                    audit::UnsealedTail { events: 0, .. } => String::new(),
                    audit::UnsealedTail { events, oldest } => format!(
                        "; {events} recorded but not chained yet, the oldest at {}",
                        oldest.map_or_else(|| "?".to_owned(), |t| t.to_rfc3339())
                    ),
                };
                match report.broken {
                    None => println!("{org}: ok ({} events{unsealed})", report.checked),
                    Some(link) => {
                        broken += 1;
                        println!(
                            "{org}: BROKEN at seq {}: {} ({} events verified before it)",
                            link.seq, link.reason, report.checked
                        );
                    }
                }
            }
            if broken > 0 {
                anyhow::bail!("{broken} broken audit chain(s)");
            }
            Ok(())
        }
        Command::Audit {
            command: AuditCommand::PurgeExpired,
        } => {
            let state = services(&config).await?;
            let report = crate::background::retention_run::run_once(&state).await?;
            println!(
                "{} organizations, {} events purged in {}, {} failed",
                report.organizations,
                report.purged_events,
                report.purged_organizations,
                report.failed
            );
            if report.failed > 0 {
                anyhow::bail!("{} organizations failed", report.failed);
            }
            Ok(())
        }
        Command::Staff { command } => {
            // `users.is_staff` is not writable by the application role.
            let state = operator_services(&config).await?;
            let (email, staff) = match command {
                StaffCommand::Grant { email } => (email, true),
                StaffCommand::Revoke { email } => (email, false),
            };
            state.tenancy.set_staff(&email, staff).await?;
            println!(
                "{email}: staff {}",
                if staff { "granted" } else { "revoked" }
            );
            Ok(())
        }
        Command::Billing { command } => {
            let state = services(&config).await?;
            match command {
                BillingCommand::Run => {
                    let report = crate::background::billing_run::run_once(&state).await?;
                    println!(
                        "{} organizations, {} advanced, {} failed",
                        report.organizations, report.advanced, report.failed
                    );
                    if report.failed > 0 {
                        anyhow::bail!("{} organizations failed", report.failed);
                    }
                }
                BillingCommand::MarkPaid { org, invoice } => {
                    let tx = state
                        .tenancy
                        .system_tx(kernel::OrgId::from_uuid(org))
                        .await?;
                    state.subscriptions.mark_paid(&tx, invoice).await?;
                    tx.commit().await?;
                    println!("{invoice}: paid");
                }
                BillingCommand::VoidInvoice { org, invoice } => {
                    let tx = state
                        .tenancy
                        .system_tx(kernel::OrgId::from_uuid(org))
                        .await?;
                    state.subscriptions.invoices().void(&tx, invoice).await?;
                    tx.commit().await?;
                    println!("{invoice}: void");
                }
                BillingCommand::CreditNote {
                    org,
                    invoice,
                    amount,
                    reason,
                } => {
                    let tx = state
                        .tenancy
                        .system_tx(kernel::OrgId::from_uuid(org))
                        .await?;
                    let note = state
                        .subscriptions
                        .invoices()
                        .credit_note(&tx, invoice, amount, &reason)
                        .await?;
                    tx.commit().await?;
                    println!(
                        "{}: {} {}",
                        note.number.unwrap_or_default(),
                        note.total_minor,
                        note.currency
                    );
                }
                BillingCommand::SetTaxRate { org, rate } => {
                    let tx = state
                        .tenancy
                        .system_tx(kernel::OrgId::from_uuid(org))
                        .await?;
                    state.subscriptions.set_tax_rate(&tx, rate).await?;
                    tx.commit().await?;
                    println!("{org}: tax rate {rate}");
                }
            }
            Ok(())
        }
        Command::Catalog {
            command: CatalogCommand::Import { file },
        } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let catalog = billing::CatalogFile::parse(&text)?;
            let state = services(&config).await?;
            for line in catalog::import_catalog(&state, &catalog).await? {
                println!("{line}");
            }
            Ok(())
        }
        Command::PersistedQueries {
            command: PersistedQueriesCommand::Import { manifest },
        } => {
            let text = std::fs::read_to_string(&manifest)
                .with_context(|| format!("reading {}", manifest.display()))?;
            let manifest: serde_json::Value =
                serde_json::from_str(&text).context("the manifest is not JSON")?;
            let operations = tenancy::read_manifest(&manifest)?;
            for (index, operation) in operations.iter().enumerate() {
                crate::graphql::admission::check_trusted_operation(operation)
                    .map_err(|reason| anyhow::anyhow!("operations[{index}].body {reason}"))?;
            }
            let state = operator_services(&config).await?;
            let added = state
                .tenancy
                .import_platform_trusted_documents(&operations)
                .await?;
            println!(
                "{added} trusted documents added, {} known already",
                operations.len() - added
            );
            Ok(())
        }
        Command::Jobs { command } => {
            let state = services(&config).await?;
            match command {
                JobsCommand::List {
                    state: wanted,
                    kind,
                } => {
                    for count in state.jobs.counts().await? {
                        println!("{} {}: {}", count.kind, count.state, count.count);
                    }
                    for job in state.jobs.list(wanted, kind.as_deref()).await? {
                        println!(
                            "{} {} {} attempts {}/{} run_at {}{}",
                            job.id,
                            job.kind,
                            job.state,
                            job.attempts,
                            job.max_attempts,
                            job.run_at.to_rfc3339(),
                            job.last_error
                                .map(|e| format!(" last error: {e}"))
                                .unwrap_or_default()
                        );
                    }
                }
                JobsCommand::Retry { id } => {
                    let job = state.jobs.retry(id).await?;
                    println!("{}: {} again", job.id, job.state);
                }
                JobsCommand::Cancel { id } => {
                    let job = state.jobs.cancel(id).await?;
                    println!("{}: {}", job.id, job.state);
                }
            }
            Ok(())
        }
        Command::Privacy {
            command: PrivacyCommand::Erase { email },
        } => {
            let state = services(&config).await?;
            let user = state
                .tenancy
                .erase_account_on_request(&email, "operator")
                .await?;
            println!("account {user} erased");
            Ok(())
        }
        Command::Privacy {
            command:
                PrivacyCommand::PublishDpa {
                    file,
                    version,
                    subprocessors,
                },
        } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let subprocessors = subprocessors
                .iter()
                .map(|line| match line.split('|').collect::<Vec<_>>()[..] {
                    [name, purpose, location] => Ok(tenancy::dpa::Subprocessor {
                        name: name.trim().to_owned(),
                        purpose: purpose.trim().to_owned(),
                        location: location.trim().to_owned(),
                    }),
                    _ => anyhow::bail!("--subprocessor takes name|purpose|location: {line}"),
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let state = services(&config).await?;
            let published = state
                .tenancy
                .publish_dpa(&version, &text, subprocessors)
                .await?;
            println!(
                "agreement {} published (sha256 {})",
                published.version, published.sha256
            );
            Ok(())
        }
        Command::Privacy {
            command: PrivacyCommand::ReplayErasures { ledger },
        } => {
            let state = services(&config).await?;
            if let Some(file) = ledger {
                let text = std::fs::read_to_string(&file)
                    .with_context(|| format!("reading {}", file.display()))?;
                let added = state.tenancy.import_erasure_ledger(&text).await?;
                println!("{added} ledger entries added");
            }
            let replayed = state.tenancy.replay_erasures().await?;
            println!("{replayed} erasures re-applied");
            Ok(())
        }
        Command::Privacy {
            command: PrivacyCommand::ExportErasures,
        } => {
            let state = services(&config).await?;
            print!("{}", state.tenancy.erasure_ledger_ndjson().await?);
            Ok(())
        }
        Command::Privacy {
            command: PrivacyCommand::PurgeDue,
        } => {
            let state = services(&config).await?;
            let purged = crate::background::retention_run::purge_due_organizations(&state).await?;
            for report in &purged {
                let rows: u64 = report.rows.iter().map(|(_, rows)| rows).sum();
                println!(
                    "organization {} purged: {rows} rows{}",
                    report.org,
                    if report.tombstone {
                        " (finalized invoices kept for their legal period)"
                    } else {
                        ""
                    }
                );
            }
            println!("{} organizations purged", purged.len());
            Ok(())
        }
        Command::Privacy {
            command: PrivacyCommand::Record { format },
        } => {
            match format {
                RecordFormat::Md => print!("{}", crate::privacy::record_markdown()),
                RecordFormat::Json => println!("{}", crate::privacy::record_json()),
            }
            Ok(())
        }
        Command::ExportSchema { out } => {
            std::fs::write(&out, graphql::sdl())
                .with_context(|| format!("writing {}", out.display()))?;
            tracing::info!(path = %out.display(), "schema written");
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Cli, Command};
    use clap::{CommandFactory, Parser};

    #[test]
    fn settings_are_accepted_before_and_after_the_subcommand() {
        Cli::command().debug_assert();
        for args in [
            ["platform", "--bind-addr", "127.0.0.1:9999", "serve"],
            ["platform", "serve", "--bind-addr", "127.0.0.1:9999"],
        ] {
            let cli = Cli::try_parse_from(args).expect("parsed");
            assert!(matches!(cli.command, Command::Serve));
            assert_eq!(cli.config.http.bind_addr.to_string(), "127.0.0.1:9999");
        }
    }

    /// The settings moved into groups kept their flags (and variables): a deployment's
    /// command line reads the same.
    #[test]
    fn grouped_settings_keep_their_flags() {
        use secrecy::ExposeSecret;
        let cli = Cli::try_parse_from([
            "platform",
            "serve",
            "--database-url",
            "sqlite://elsewhere.db",
            "--database-max-connections",
            "3",
            "--http-max-connections",
            "7",
            "--stripe-secret-key",
            "sk_live_x",
            "--billing-run-interval-secs",
            "0",
            "--webhook-insecure-hosts",
            "127.0.0.1,localhost",
        ])
        .expect("parsed");
        let config = cli.config;
        assert_eq!(config.database.url, "sqlite://elsewhere.db");
        assert_eq!(config.database.max_connections, 3);
        assert_eq!(config.http.max_connections, 7);
        assert_eq!(
            config.stripe.secret_key.as_ref().map(|k| k.expose_secret()),
            Some("sk_live_x")
        );
        assert_eq!(config.billing.run_every(), None);
        assert_eq!(config.webhooks.insecure_hosts, ["127.0.0.1", "localhost"]);
        // A secret is never printed with the settings.
        assert!(!format!("{config:?}").contains("sk_live_x"));
    }
}
