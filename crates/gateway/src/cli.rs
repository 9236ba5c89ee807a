//! The `platform` command line: `serve`, `migrate`, `seed`, `export-schema`.

use crate::config::Config;
use crate::startup::Application;
use crate::{graphql, seed, telemetry};
use anyhow::Context;
use clap::{Parser, Subcommand};
use kernel::{Db, SystemClock};
use migration::{Migrator, MigratorTrait};
use std::path::PathBuf;
use std::sync::Arc;
use tenancy::{TenancyService, TenancySettings};

/// The multi-tenant platform backend.
#[derive(Debug, Parser)]
#[command(name = "platform", version, about)]
struct Cli {
    #[command(flatten)]
    config: Config,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve GraphQL (applies pending migrations on SQLite).
    Serve,
    /// Apply pending migrations (as the owner role: `MIGRATE_DATABASE_URL`).
    Migrate,
    /// Create the demo organizations and users (once; later runs change nothing).
    Seed,
    /// Write the GraphQL schema (SDL).
    ExportSchema {
        /// Where to write it.
        #[arg(long, default_value = "schema.graphql")]
        out: PathBuf,
    },
}

/// Entry point of the binary.
pub fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    telemetry::init(
        &cli.config.log_filter,
        cli.config.log_format,
        std::io::stdout,
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(run(cli))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = cli.config;
    match cli.command {
        Command::Serve => {
            let app = Application::build(&config, Arc::new(SystemClock)).await?;
            app.run_until_stopped().await
        }
        Command::Migrate => {
            let db = Db::connect(config.migration_url(), 2)
                .await
                .context("connecting to the database")?;
            Migrator::up(db.conn(), None)
                .await
                .context("applying migrations")?;
            tracing::info!("migrations applied");
            Ok(())
        }
        Command::Seed => {
            let db = Db::connect(&config.database_url, 4)
                .await
                .context("connecting to the database")?;
            if db.backend() == kernel::Backend::Sqlite {
                Migrator::up(db.conn(), None)
                    .await
                    .context("applying migrations")?;
            }
            let secret = config.resolve_token_secret()?;
            let tenancy = TenancyService::new(
                db,
                Arc::new(SystemClock),
                &secret,
                TenancySettings::default(),
                authz::Authorizer::new(crate::startup::ENFORCER_CACHE_BYTES).await?,
            );
            match seed::seed(&tenancy).await? {
                seed::Seeded::Created => tracing::info!("demo data created"),
                seed::Seeded::AlreadyPresent => tracing::info!("demo data already present"),
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
