//! The configuration's groups, each with the runtime settings it builds. Flags keep the
//! names they had before the groups (`--database-url`, `--stripe-secret-key`, …).

use super::{
    Environment, Introspection, LogFormat, PaymentProviderKind, TrustedDocumentsOnly,
    generate_secret, parse_origin, parse_seconds, write_private,
};
use anyhow::{Context, bail};
use clap::Args;
use kernel::ConfiguredLimits;
use secrecy::{ExposeSecret, SecretString};
use std::net::SocketAddr;
use std::path::PathBuf;

/// The shortest signing secret or metrics token accepted.
const MIN_SECRET_CHARS: usize = 32;

/// The database the server and the operator commands use.
#[derive(Debug, Clone, Args)]
pub struct DatabaseConfig {
    /// Database the server uses: `sqlite://FILE` or `postgres://…` (on PostgreSQL, connect
    /// as the application role `platform_app`, which Row-Level Security applies to).
    #[arg(
        id = "database_url",
        long = "database-url",
        global = true,
        env = "DATABASE_URL",
        hide_env_values = true,
        default_value = "sqlite://platform.db"
    )]
    pub url: String,

    /// Database URL for `migrate` (the owner role); defaults to `DATABASE_URL`.
    #[arg(
        id = "migrate_database_url",
        long = "migrate-database-url",
        global = true,
        env = "MIGRATE_DATABASE_URL",
        hide_env_values = true
    )]
    pub migrate_url: Option<String>,

    /// Database connections in the pool.
    #[arg(
        id = "database_max_connections",
        long = "database-max-connections",
        global = true,
        env = "DATABASE_MAX_CONNECTIONS",
        default_value_t = 16
    )]
    pub max_connections: u32,
}

/// The HTTP server: where it listens, what it allows its clients, and the API surface it shows.
#[derive(Debug, Clone, Args)]
pub struct HttpConfig {
    /// Address the HTTP server listens on; port 0 picks a free one.
    #[arg(
        long,
        global = true,
        env = "BIND_ADDR",
        default_value = "127.0.0.1:8080"
    )]
    pub bind_addr: SocketAddr,

    /// HTTP connections served at once; further clients wait for a free one.
    #[arg(
        id = "http_max_connections",
        long = "http-max-connections",
        global = true,
        env = "HTTP_MAX_CONNECTIONS",
        default_value_t = 1_024
    )]
    pub max_connections: usize,

    /// Seconds a client has to send a request's headers (from connecting, or from the end
    /// of the previous response on a kept-alive connection); then it is disconnected.
    #[arg(id = "http_header_timeout",
        long = "http-header-timeout", global = true, env = "HTTP_HEADER_TIMEOUT_SECS", default_value = "10", value_parser = parse_seconds)]
    pub header_timeout: std::time::Duration,

    /// Seconds a client has to send a request's body.
    #[arg(id = "http_body_timeout",
        long = "http-body-timeout", global = true, env = "HTTP_BODY_TIMEOUT_SECS", default_value = "10", value_parser = parse_seconds)]
    pub body_timeout: std::time::Duration,

    /// Seconds the requests in flight get to finish after SIGTERM or Ctrl-C.
    #[arg(long, global = true, env = "SHUTDOWN_GRACE_SECS", default_value = "10", value_parser = parse_seconds)]
    pub shutdown_grace: std::time::Duration,

    /// Seconds (decimals allowed) a request may run before it is stopped, its transaction
    /// rolled back and `TIMEOUT` answered. A request whose client went away still runs to
    /// its end, within this deadline.
    #[arg(long, global = true, env = "REQUEST_TIMEOUT_SECS", default_value = "30", value_parser = parse_seconds)]
    pub request_timeout: std::time::Duration,

    /// Origins whose pages may call the API from a browser (CORS), comma-separated, each
    /// `scheme://host[:port]` (`https://app.example.com`); none: no cross-origin calls.
    #[arg(long, global = true, env = "CORS_ALLOWED_ORIGINS", value_delimiter = ',', value_parser = parse_origin)]
    pub cors_allowed_origins: Vec<String>,

    /// Who may introspect the schema: `all`, `signed-in` (a person or an API key) or
    /// `off`. Default: `all` in development (GraphiQL before logging in), `signed-in`
    /// in production.
    #[arg(long, global = true, env = "INTROSPECTION", value_enum)]
    pub introspection: Option<Introspection>,

    /// Callers besides restricted API keys who may run trusted documents only (by
    /// `documentId`), comma-separated: `anonymous`, `users`. Default: none (people and
    /// anonymous callers may send document text; each API key is restricted or not).
    #[arg(
        long,
        global = true,
        env = "TRUSTED_DOCUMENTS_ONLY",
        value_enum,
        value_delimiter = ','
    )]
    pub trusted_documents_only: Vec<TrustedDocumentsOnly>,
}

/// Signing access tokens.
#[derive(Debug, Clone, Args)]
pub struct AuthConfig {
    /// Secret that signs access tokens (at least 32 characters). Required in production;
    /// in development it is generated once and kept in `token_secret_file`.
    #[arg(long, global = true, env = "TOKEN_SECRET", hide_env_values = true)]
    pub token_secret: Option<SecretString>,

    /// Where the development signing secret is kept.
    #[arg(
        long,
        global = true,
        env = "TOKEN_SECRET_FILE",
        default_value = ".platform-secret"
    )]
    pub token_secret_file: PathBuf,
}

/// What one organization, key, person or address may use: the free allowance until billing decides, request rates and sign-ups.
#[derive(Debug, Clone, Args)]
pub struct LimitsConfig {
    /// Projects an organization may have until billing decides (0: unlimited).
    #[arg(long, global = true, env = "PLAN_MAX_PROJECTS", default_value_t = 100)]
    pub plan_max_projects: u64,

    /// Documents a project may have until billing decides (0: unlimited).
    #[arg(
        long,
        global = true,
        env = "PLAN_MAX_DOCUMENTS_PER_PROJECT",
        default_value_t = 1_000
    )]
    pub plan_max_documents_per_project: u64,

    /// Members plus pending invitations an organization may have until billing decides
    /// (0: unlimited).
    #[arg(long, global = true, env = "PLAN_MAX_SEATS", default_value_t = 50)]
    pub plan_max_seats: u64,

    /// Requests a minute each API key may send, unless its organization's plan sets
    /// another rate (0: unlimited).
    #[arg(
        long,
        global = true,
        env = "RATE_LIMIT_API_KEY_PER_MINUTE",
        default_value_t = 600
    )]
    pub rate_limit_api_key_per_minute: u32,

    /// Requests a minute each person may send, unless the organization's plan sets
    /// another rate (0: unlimited).
    #[arg(
        long,
        global = true,
        env = "RATE_LIMIT_USER_PER_MINUTE",
        default_value_t = 1200
    )]
    pub rate_limit_user_per_minute: u32,

    /// Redis (`redis://host:6379`): rate limit counters shared by every instance. Without
    /// it each instance counts on its own.
    #[arg(long, global = true, env = "REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<SecretString>,

    /// Accounts one client address may create per hour (`signUp`; then `RATE_LIMITED`).
    #[arg(
        long,
        global = true,
        env = "SIGN_UPS_PER_ADDRESS_PER_HOUR",
        default_value_t = 20
    )]
    pub sign_ups_per_address_per_hour: u64,
}

/// Billing runs, how invoices are collected, and late usage.
#[derive(Debug, Clone, Args)]
pub struct BillingConfig {
    /// Seconds between billing runs in the server (trials ending, renewals, invoices);
    /// 0: none (run `platform billing run` from a scheduler instead).
    #[arg(
        id = "billing_run_interval_secs",
        long = "billing-run-interval-secs",
        global = true,
        env = "BILLING_RUN_INTERVAL_SECS",
        default_value_t = 60
    )]
    pub run_interval_secs: u64,

    /// How invoices are collected: `manual` (bank transfer; staff mark them paid) or
    /// `stripe` (charged automatically, dunned on failure).
    #[arg(
        long,
        global = true,
        env = "PAYMENT_PROVIDER",
        default_value = "manual"
    )]
    pub payment_provider: PaymentProviderKind,

    /// Days after each failed charge before the next attempt; after the last, the
    /// subscription is suspended.
    #[arg(
        long,
        global = true,
        env = "DUNNING_RETRY_DAYS",
        default_value = "3,5,7"
    )]
    pub dunning_retry_days: String,

    /// Days after a period ends during which its usage may still be reported (billed on
    /// the next invoice as an adjustment); later reports are refused.
    #[arg(long, global = true, env = "USAGE_GRACE_DAYS", default_value_t = 3)]
    pub usage_grace_days: u32,
}

/// Stripe, when it is the payment provider.
#[derive(Debug, Clone, Args)]
pub struct StripeConfig {
    /// Stripe's API address (a local mock in tests).
    #[arg(
        id = "stripe_api_base",
        long = "stripe-api-base",
        global = true,
        env = "STRIPE_API_BASE",
        default_value = "https://api.stripe.com"
    )]
    pub api_base: String,

    /// Stripe secret key (`sk_…`).
    #[arg(
        id = "stripe_secret_key",
        long = "stripe-secret-key",
        global = true,
        env = "STRIPE_SECRET_KEY",
        hide_env_values = true
    )]
    pub secret_key: Option<SecretString>,

    /// Stripe webhook endpoint secret (`whsec_…`); webhooks are refused without it.
    #[arg(
        id = "stripe_webhook_secret",
        long = "stripe-webhook-secret",
        global = true,
        env = "STRIPE_WEBHOOK_SECRET",
        hide_env_values = true
    )]
    pub webhook_secret: Option<SecretString>,
}

/// Notice, grace and retention periods, and data exports.
#[derive(Debug, Clone, Args)]
pub struct PrivacyConfig {
    /// Days after a new data processing agreement is published during which an earlier
    /// acceptance still lets an organization create API keys and change plan (0 to 365).
    #[arg(long, global = true, env = "DPA_NOTICE_DAYS", default_value_t = 30,
          value_parser = clap::value_parser!(u16).range(0..=365))]
    pub dpa_notice_days: u16,

    /// Days an organization whose deletion an owner asked for stays (readable by its
    /// owners, and cancellable) before it is purged (0 to 365).
    #[arg(long, global = true, env = "ORG_DELETION_GRACE_DAYS", default_value_t = 30,
          value_parser = clap::value_parser!(u16).range(0..=365))]
    pub org_deletion_grace_days: u16,

    /// Years a deleted organization's finalized invoices and credit notes are kept (the
    /// legal retention of commercial and tax law; 1 to 30).
    #[arg(long, global = true, env = "INVOICE_RETENTION_YEARS", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(1..=30))]
    pub invoice_retention_years: u32,

    /// Where prepared data exports are kept until they expire (created if missing; on
    /// several instances, a directory they share).
    #[arg(
        long,
        global = true,
        env = "DATA_EXPORT_DIR",
        default_value = "exports"
    )]
    pub data_export_dir: std::path::PathBuf,

    /// Hours a prepared data export may be downloaded before it is deleted (1 to 720).
    #[arg(long, global = true, env = "DATA_EXPORT_TTL_HOURS", default_value_t = 24,
          value_parser = clap::value_parser!(u16).range(1..=720))]
    pub data_export_ttl_hours: u16,

    /// Seconds between audit retention runs in the server (purging, in organizations that
    /// set a retention, the events older than it); 0: none (run `platform audit
    /// purge-expired` from a scheduler instead).
    #[arg(
        long,
        global = true,
        env = "AUDIT_RETENTION_INTERVAL_SECS",
        default_value_t = 3_600
    )]
    pub audit_retention_interval_secs: u64,
}

/// Logs, metrics and traces.
#[derive(Debug, Clone, Args)]
pub struct TelemetryConfig {
    /// Log line format.
    #[arg(long, global = true, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Pretty)]
    pub log_format: LogFormat,

    /// Which log lines to keep (tracing `EnvFilter` syntax).
    #[arg(
        long,
        global = true,
        env = "RUST_LOG",
        default_value = "info,sqlx=warn,sea_orm=warn,async_graphql=warn"
    )]
    pub log_filter: String,

    /// A bearer token that opens `GET /metrics` on the API's own port (at least 32
    /// characters). Without it, and without `METRICS_BIND_ADDR`, there is no metrics
    /// endpoint.
    #[arg(long, global = true, env = "METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<SecretString>,

    /// An address of its own for `GET /metrics` (no token asked: bind it where only the
    /// monitoring network reaches, e.g. `10.0.0.5:9100`).
    #[arg(long, global = true, env = "METRICS_BIND_ADDR")]
    pub metrics_bind_addr: Option<SocketAddr>,

    /// An OpenTelemetry collector (OTLP over HTTP/protobuf, e.g. `http://127.0.0.1:4318`):
    /// the request, authorization and SQL spans go there, `/v1/traces` appended (as the
    /// OpenTelemetry specification reads this variable; `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`,
    /// `OTEL_EXPORTER_OTLP_HEADERS` and `OTEL_SERVICE_NAME` are honoured too). Unset: no
    /// spans are exported and none of that machinery runs.
    #[arg(long, global = true, env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    pub otel_exporter_otlp_endpoint: Option<String>,
}

/// Where webhook deliveries may go.
#[derive(Debug, Clone, Args)]
pub struct WebhookConfig {
    /// Hosts webhook deliveries may reach over plain http and at non-public addresses,
    /// comma-separated (development only, e.g. `127.0.0.1,localhost`). Empty: https to
    /// public addresses only.
    #[arg(
        id = "webhook_insecure_hosts",
        long = "webhook-insecure-hosts",
        global = true,
        env = "WEBHOOK_INSECURE_HOSTS",
        value_delimiter = ','
    )]
    pub insecure_hosts: Vec<String>,
}

impl DatabaseConfig {
    /// The URL migrations run with.
    pub fn migration_url(&self) -> &str {
        self.migrate_url.as_deref().unwrap_or(&self.url)
    }
}

impl HttpConfig {
    /// What the HTTP server allows its clients.
    pub fn limits(&self) -> crate::server::HttpLimits {
        crate::server::HttpLimits {
            max_connections: self.max_connections.max(1),
            header_timeout: self.header_timeout,
            body_timeout: self.body_timeout,
            shutdown_grace: self.shutdown_grace,
        }
    }

    /// Who may introspect the schema, the environment's default unless set.
    pub fn introspection(&self, environment: Environment) -> Introspection {
        self.introspection.unwrap_or(match environment {
            Environment::Development => Introspection::All,
            Environment::Production => Introspection::SignedIn,
        })
    }
}

impl AuthConfig {
    /// The signing secret: configured, or in development read from (or created in) the
    /// secret file.
    pub fn resolve_token_secret(&self, environment: Environment) -> anyhow::Result<SecretString> {
        if let Some(secret) = &self.token_secret {
            if secret.expose_secret().chars().count() < MIN_SECRET_CHARS {
                bail!("TOKEN_SECRET must be at least {MIN_SECRET_CHARS} characters");
            }
            return Ok(secret.clone());
        }
        if environment == Environment::Production {
            bail!("TOKEN_SECRET is required when PLATFORM_ENV=production");
        }
        let path = &self.token_secret_file;
        if let Ok(existing) = std::fs::read_to_string(path) {
            let existing = existing.trim().to_owned();
            if existing.chars().count() >= MIN_SECRET_CHARS {
                return Ok(SecretString::from(existing));
            }
        }
        let generated = generate_secret();
        write_private(path, &generated).with_context(|| {
            format!("writing the development token secret to {}", path.display())
        })?;
        Ok(SecretString::from(generated))
    }
}

impl LimitsConfig {
    /// The plan limits from configuration (0 means unlimited).
    pub fn plan_limits(&self) -> ConfiguredLimits {
        let limit = |n: u64| (n > 0).then_some(n);
        ConfiguredLimits {
            projects: limit(self.plan_max_projects),
            documents_per_project: limit(self.plan_max_documents_per_project),
            seats: limit(self.plan_max_seats),
        }
    }

    /// The request rates unless a plan sets others (0: unlimited).
    pub fn rates(&self) -> crate::rate_limit::Rates {
        crate::rate_limit::Rates {
            per_api_key: std::num::NonZeroU32::new(self.rate_limit_api_key_per_minute),
            per_user: std::num::NonZeroU32::new(self.rate_limit_user_per_minute),
        }
    }
}

impl BillingConfig {
    /// The payment provider (Stripe's settings from `stripe`) and how invoices are
    /// collected.
    pub fn payments(
        &self,
        stripe: &StripeConfig,
    ) -> anyhow::Result<(billing::SharedProvider, billing::Collection)> {
        let schedule = billing::DunningSchedule::parse(&self.dunning_retry_days)?;
        let provider: billing::SharedProvider = match self.payment_provider {
            PaymentProviderKind::Manual => std::sync::Arc::new(billing::ManualProvider),
            PaymentProviderKind::Stripe => {
                let key = stripe.secret_key.as_ref().ok_or_else(|| {
                    anyhow::anyhow!("PAYMENT_PROVIDER=stripe needs STRIPE_SECRET_KEY")
                })?;
                std::sync::Arc::new(stripe_provider::StripeProvider::new(
                    stripe.api_base.clone(),
                    key.expose_secret(),
                ))
            }
        };
        let collection = billing::Collection {
            automatic: provider.charges_automatically(),
            schedule,
        };
        Ok((provider, collection))
    }

    /// How long after a period ends its usage may still be reported.
    pub fn usage_grace(&self) -> chrono::Duration {
        chrono::Duration::days(i64::from(self.usage_grace_days))
    }

    /// How often the server runs billing itself, if it does.
    pub fn run_every(&self) -> Option<std::time::Duration> {
        (self.run_interval_secs > 0).then(|| std::time::Duration::from_secs(self.run_interval_secs))
    }
}

impl PrivacyConfig {
    /// Tenancy's notice, grace and retention periods (`max_sign_ups_per_ip` from the
    /// limits).
    pub fn tenancy_settings(&self, limits: &LimitsConfig) -> tenancy::TenancySettings {
        tenancy::TenancySettings {
            max_sign_ups_per_ip: limits.sign_ups_per_address_per_hour,
            dpa_notice: chrono::Duration::days(i64::from(self.dpa_notice_days)),
            deletion_grace: chrono::Duration::days(i64::from(self.org_deletion_grace_days)),
            export_ttl: chrono::Duration::hours(i64::from(self.data_export_ttl_hours)),
            invoice_retention_years: self.invoice_retention_years,
            ..tenancy::TenancySettings::default()
        }
    }

    /// How often the server runs audit retention itself, if it does.
    pub fn retention_run_every(&self) -> Option<std::time::Duration> {
        (self.audit_retention_interval_secs > 0)
            .then(|| std::time::Duration::from_secs(self.audit_retention_interval_secs))
    }
}

impl TelemetryConfig {
    /// The metrics token, if set, once it is long enough. Checked here rather than by the
    /// argument parser, whose error would repeat the value (a secret) on the terminal.
    pub fn metrics_token(&self) -> anyhow::Result<Option<SecretString>> {
        match &self.metrics_token {
            Some(token) if token.expose_secret().len() < MIN_SECRET_CHARS => {
                anyhow::bail!("METRICS_TOKEN must be at least {MIN_SECRET_CHARS} characters")
            }
            token => Ok(token.clone()),
        }
    }
}

impl WebhookConfig {
    /// Where webhook deliveries may go.
    pub fn egress(&self) -> webhooks::egress::EgressPolicy {
        webhooks::egress::EgressPolicy {
            insecure_hosts: self
                .insecure_hosts
                .iter()
                .map(|h| h.trim().to_owned())
                .filter(|h| !h.is_empty())
                .collect(),
            ..webhooks::egress::EgressPolicy::default()
        }
    }
}
