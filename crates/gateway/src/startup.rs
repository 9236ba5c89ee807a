//! Building the application: database, services, schema, router, listener.

use crate::config::Config;
use crate::graphql::{AppSchema, schema_builder};
use crate::http;
use anyhow::Context as _;
use audit::AuditLog;
use authz::Authorizer;
use core_domain::{DocumentService, ProjectService};
use kernel::{Backend, ConfiguredLimits, Db, SharedClock, SharedLimits};
use migration::{Migrator, MigratorTrait};
use secrecy::SecretString;
use std::sync::Arc;
use tenancy::{TenancyService, TenancySettings};
use tokio::net::TcpListener;

/// Memory for cached per-organization enforcers: the most recently used organizations
/// stay compiled, the rest are compiled again on their next request (what one costs in
/// memory and to compile: `make bench`, and the README's "Permissions").
pub const ENFORCER_CACHE_BYTES: u64 = 256 * 1024 * 1024;

/// The services every request shares, behind one `Arc`: a request, its loaders and its
/// spawned work copy a pointer, never the services (the authorizer's policy model was
/// deep-copied several times per request before).
#[derive(Clone, Debug)]
pub struct AppState(Arc<Services>);

impl std::ops::Deref for AppState {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.0
    }
}

impl From<Services> for AppState {
    fn from(services: Services) -> Self {
        Self(Arc::new(services))
    }
}

impl AppState {
    /// Every service, wired the same way for the server and the command line.
    pub async fn new(
        db: Db,
        clock: SharedClock,
        settings: ServiceSettings,
    ) -> anyhow::Result<Self> {
        Services::new(db, clock, settings).await.map(Self::from)
    }
}

/// What the services are built with, read from the configuration in one place: each
/// setting's default is the configuration's (`Config`), never a second copy here.
pub struct ServiceSettings {
    /// Signs access tokens.
    pub token_secret: SecretString,
    /// What an organization without a subscription may have.
    pub free_allowance: ConfiguredLimits,
    /// Who takes payments.
    pub payments: billing::SharedProvider,
    /// How invoices are collected (automatically or by hand, and the dunning schedule).
    pub collection: billing::Collection,
    /// Sign-up throttling, notice periods, grace periods, retention.
    pub tenancy: TenancySettings,
    /// Where webhook deliveries may go.
    pub egress: webhooks::egress::EgressPolicy,
    /// The secret Stripe signs its webhooks with; none: they are refused.
    pub stripe_webhook_secret: Option<SecretString>,
    /// How long after a period ends its usage may still be reported.
    pub usage_grace: chrono::Duration,
    /// Where data export archives are kept until downloaded.
    pub export_dir: std::path::PathBuf,
}

impl ServiceSettings {
    /// The settings `config` names (the token secret resolved, the payment provider
    /// built).
    pub fn from_config(config: &Config) -> anyhow::Result<Self> {
        let (payments, collection) = config.billing.payments(&config.stripe)?;
        Ok(Self {
            token_secret: config.auth.resolve_token_secret(config.environment)?,
            free_allowance: config.limits.plan_limits(),
            payments,
            collection,
            tenancy: config.privacy.tenancy_settings(&config.limits),
            egress: config.webhooks.egress(),
            stripe_webhook_secret: config.stripe.webhook_secret.clone(),
            usage_grace: config.billing.usage_grace(),
            export_dir: config.privacy.data_export_dir.clone(),
        })
    }
}

/// The services themselves (see [`AppState`]).
#[derive(Debug)]
pub struct Services {
    /// Users, organizations and the tenant boundary.
    pub tenancy: TenancyService,
    /// Permissions.
    pub authz: Authorizer,
    /// The audit trail.
    pub audit: AuditLog,
    /// Projects.
    pub projects: ProjectService,
    /// Documents and their approval workflow.
    pub documents: DocumentService,
    /// Usage of billable metrics.
    pub usage: billing::UsageService,
    /// Plans and metrics.
    pub catalog: billing::Catalog,
    /// Each organization's plan over time.
    pub subscriptions: billing::Subscriptions,
    /// What each organization's plan allows (limits and features).
    pub limits: SharedLimits,
    /// How invoices are charged.
    pub payments: billing::SharedProvider,
    /// The secret Stripe signs webhooks with (webhooks are refused without it).
    pub stripe_webhook_secret: Option<SecretString>,
    /// The clock.
    pub clock: SharedClock,
    /// How long after a period ends its usage may still be reported.
    pub usage_grace: chrono::Duration,
    /// Where prepared data export archives are kept until they expire.
    pub export_dir: std::path::PathBuf,
    /// Documents known by id (trusted documents and APQ), kept per process.
    pub persisted: Arc<crate::graphql::admission::PersistedDocuments>,
    /// What `/metrics` reports.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// The durable job queue (this process's worker name in it).
    pub jobs: jobs::Jobs,
    /// Outbound webhooks.
    pub webhooks: webhooks::Webhooks,
    /// The database.
    pub db: Db,
}

impl Services {
    /// Every service, wired the same way for the server and the command line.
    pub async fn new(
        db: Db,
        clock: SharedClock,
        settings: ServiceSettings,
    ) -> anyhow::Result<Self> {
        let ServiceSettings {
            token_secret,
            free_allowance,
            payments,
            collection,
            tenancy: tenancy_settings,
            egress,
            stripe_webhook_secret,
            usage_grace,
            export_dir,
        } = settings;
        let clock_for_state = clock.clone();
        let audit = AuditLog::new(clock.clone(), db.backend());
        let authz = Authorizer::new(ENFORCER_CACHE_BYTES, audit.clone(), clock.clone()).await?;
        let catalog = billing::Catalog::new(audit.clone(), clock.clone());
        let subscriptions =
            billing::Subscriptions::new(catalog.clone(), audit.clone(), clock.clone())
                .with_collection(collection);
        // What a plan allows is billing's answer, asked by every service that creates.
        let limits: SharedLimits = Arc::new(billing::PlanEntitlements::new(
            subscriptions.clone(),
            free_allowance,
        ));
        let projects = ProjectService::new(audit.clone(), clock.clone(), limits.clone());
        let documents = DocumentService::new(audit.clone(), clock.clone(), limits.clone());
        let usage = billing::UsageService::new(audit.clone(), clock.clone());
        let jobs = jobs::Jobs::new(db.clone(), clock_for_state.clone());
        let tenancy = TenancyService::new(
            db.clone(),
            clock,
            &token_secret,
            tenancy_settings,
            authz.clone(),
            audit.clone(),
        )
        .with_plan_limits(limits.clone())
        .with_jobs(jobs.clone());
        let webhooks =
            webhooks::Webhooks::new(audit.clone(), jobs.clone(), clock_for_state.clone(), egress);
        Ok(Self {
            webhooks,
            jobs,
            tenancy,
            authz,
            audit,
            projects,
            documents,
            usage,
            catalog,
            subscriptions,
            limits,
            payments,
            stripe_webhook_secret,
            clock: clock_for_state,
            usage_grace,
            export_dir,
            persisted: Arc::default(),
            metrics: Arc::default(),
            db,
        })
    }
}

/// A built server, bound to its port but not yet serving.
pub struct Application {
    state: AppState,
    billing_run_every: Option<std::time::Duration>,
    retention_run_every: Option<std::time::Duration>,
    listener: TcpListener,
    router: axum::Router,
    limits: crate::server::HttpLimits,
    port: u16,
    /// `/metrics` alone, on an address of its own (`METRICS_BIND_ADDR`).
    metrics_listener: Option<TcpListener>,
}

impl Application {
    /// Connects, migrates (SQLite only: on PostgreSQL `platform migrate` runs as the owner
    /// role), and binds `config.http.bind_addr`.
    pub async fn build(config: &Config, clock: SharedClock) -> anyhow::Result<Self> {
        let db = Db::connect(&config.database.url, config.database.max_connections)
            .await
            .context("connecting to the database")?;
        if db.backend() == Backend::Sqlite {
            Migrator::up(db.conn(), None)
                .await
                .context("applying migrations")?;
        }
        let state = AppState::new(db.clone(), clock, ServiceSettings::from_config(config)?).await?;
        let schema = build_schema(state.clone());
        let router = http::router(
            state.clone(),
            schema,
            &http::Surface {
                request_timeout: config.http.request_timeout,
                cors_allowed_origins: config.http.cors_allowed_origins.clone(),
                introspection: config.http.introspection(config.environment),
                trusted_documents_only: config.http.trusted_documents_only.clone(),
                rate_limits: Arc::new(rate_limits(&config.limits, state.clock.clone())),
                metrics_token: config.telemetry.metrics_token()?,
            },
        );
        let metrics_listener = match config.telemetry.metrics_bind_addr {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("binding {addr} (METRICS_BIND_ADDR)"))?,
            ),
            None => None,
        };
        let listener = TcpListener::bind(config.http.bind_addr)
            .await
            .with_context(|| format!("binding {}", config.http.bind_addr))?;
        let port = listener.local_addr()?.port();
        Ok(Self {
            state,
            billing_run_every: config.billing.run_every(),
            retention_run_every: config.privacy.retention_run_every(),
            listener,
            metrics_listener,
            router,
            limits: config.http.limits(),
            port,
        })
    }

    /// The database handle (its statement count is what the N+1 tests read).
    pub fn db(&self) -> Db {
        self.state.db.clone()
    }

    /// The services the server runs on (tests drive operator actions through them).
    pub fn state(&self) -> AppState {
        self.state.clone()
    }

    /// The bound port (useful with port 0).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port `/metrics` is served on by itself, if `METRICS_BIND_ADDR` is set.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
            .map(|a| a.port())
    }

    /// Serves until Ctrl-C or SIGTERM, finishing requests in flight.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        tracing::info!(
            port = self.port,
            "serving GraphQL at /graphql, GraphiQL at /"
        );
        let billing = self.billing_run_every.map(|every| {
            tokio::spawn(kernel::in_background(
                crate::background::billing_run::every(self.state.clone(), every),
            ))
        });
        let retention = self.retention_run_every.map(|every| {
            tokio::spawn(kernel::in_background(
                crate::background::retention_run::every(self.state.clone(), every),
            ))
        });
        let worker = tokio::spawn(crate::background::job_kinds::worker(self.state.clone()).run());
        let webhook_worker =
            tokio::spawn(crate::background::job_kinds::webhook_worker(self.state.clone()).run());
        let webhooks = tokio::spawn(kernel::in_background(
            crate::background::webhook_dispatch::every(self.state.clone(), WEBHOOK_DISPATCH_EVERY),
        ));
        let sealer = tokio::spawn(kernel::in_background(
            self.state
                .tenancy
                .clone()
                .run_audit_sealer(AUDIT_SEAL_SWEEP_EVERY),
        ));
        let metrics = self.metrics_listener.map(|listener| {
            let router = http::metrics_only(self.state.clone());
            tokio::spawn(async move { axum::serve(listener, router).await })
        });
        crate::server::serve(self.listener, self.router, self.limits, shutdown_signal()).await?;
        if let Some(metrics) = metrics {
            metrics.abort();
        }
        // Events still waiting in an inbox are sealed by the organization's next write
        // or by the next sweep of any instance (each sweeps when it starts).
        sealer.abort();
        // Events not yet fanned out are after their organization's cursor: the next
        // dispatch of any instance takes them.
        webhooks.abort();
        // A job cut short here is claimed again once its lease runs out.
        worker.abort();
        webhook_worker.abort();
        for job in [billing, retention].into_iter().flatten() {
            job.abort();
        }
        Ok(())
    }
}

/// How often each server looks for audit inboxes nobody sealed (an instance that
/// stopped between a commit and its sealing); see `audit::sealing`.
const AUDIT_SEAL_SWEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// How often each server fans new events out to webhook endpoints.
const WEBHOOK_DISPATCH_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// The schema with the application's services attached.
pub fn build_schema(state: AppState) -> AppSchema {
    schema_builder().data(state).finish()
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

/// The rate limits `config` sets: shared through Redis with `REDIS_URL` (connected when
/// first needed), else this process's own.
fn rate_limits(
    config: &crate::config::LimitsConfig,
    clock: SharedClock,
) -> crate::rate_limit::RateLimits {
    use crate::rate_limit::RateLimits;
    use secrecy::ExposeSecret;
    let defaults = config.rates();
    match &config.redis_url {
        None => RateLimits::local(defaults, clock),
        Some(url) => match RateLimits::shared(defaults, clock.clone(), url.expose_secret()) {
            Ok(shared) => shared,
            Err(error) => {
                tracing::error!(%error, "REDIS_URL is not a Redis URL: rate limits are counted per instance");
                RateLimits::local(defaults, clock)
            }
        },
    }
}
