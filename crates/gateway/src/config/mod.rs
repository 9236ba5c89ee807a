//! Configuration, from flags or the environment. Defaults make `make run` work on a fresh
//! clone: a SQLite file in the working directory and a signing secret generated once.

use clap::{Args, ValueEnum};

mod groups;
pub use groups::*;

/// Where the server runs and what it connects to, in groups; each group builds the
/// runtime settings of its part (see `groups.rs`). Every setting is a flag (accepted
/// before or after the subcommand) and an environment variable.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// The database.
    #[command(flatten)]
    pub database: DatabaseConfig,
    /// The HTTP server and the API surface.
    #[command(flatten)]
    pub http: HttpConfig,
    /// Access tokens.
    #[command(flatten)]
    pub auth: AuthConfig,
    /// Allowances, rates and sign-ups.
    #[command(flatten)]
    pub limits: LimitsConfig,
    /// Billing.
    #[command(flatten)]
    pub billing: BillingConfig,
    /// Stripe.
    #[command(flatten)]
    pub stripe: StripeConfig,
    /// Notice, grace and retention periods.
    #[command(flatten)]
    pub privacy: PrivacyConfig,
    /// Logs, metrics and traces.
    #[command(flatten)]
    pub telemetry: TelemetryConfig,
    /// Webhook deliveries.
    #[command(flatten)]
    pub webhooks: WebhookConfig,

    /// `development` or `production` (which refuses to start without `TOKEN_SECRET`).
    #[arg(long, global = true, env = "PLATFORM_ENV", value_enum, default_value_t = Environment::Development)]
    pub environment: Environment,
}

impl Config {
    /// Every setting at its default, whatever the environment holds: the defaults are
    /// the flags' own (defined once, beside each flag), for programs that embed the server
    /// (tests, benchmarks) and change what they need.
    pub fn defaults() -> Result<Self, clap::Error> {
        use clap::FromArgMatches;
        let command = Self::augment_args(clap::Command::new("platform"))
            .mut_args(|arg| arg.env(None::<&str>));
        Self::from_arg_matches(&command.try_get_matches_from(["platform"])?)
    }
}

/// Callers who may be restricted to trusted documents by setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TrustedDocumentsOnly {
    /// Requests without credentials.
    Anonymous,
    /// People (log-in tokens): the platform's own apps, whose documents an operator
    /// imports with `platform persisted-queries import`.
    Users,
}

/// Who may introspect the schema (`__schema`, `__type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Introspection {
    /// Anyone.
    All,
    /// Callers with valid credentials.
    SignedIn,
    /// No one.
    Off,
}

/// A browser origin: `scheme://host[:port]`, nothing after it.
fn parse_origin(text: &str) -> Result<String, String> {
    let origin = text.trim().trim_end_matches('/');
    let url = url::Url::parse(origin).map_err(|e| format!("`{origin}` is not an origin: {e}"))?;
    let well_formed = matches!(url.scheme(), "http" | "https")
        && url.host_str().is_some()
        && url.username().is_empty()
        && url.password().is_none()
        && url.path() == "/"
        && url.query().is_none()
        && url.fragment().is_none();
    if !well_formed || url.origin().ascii_serialization() != origin.to_ascii_lowercase() {
        return Err(format!(
            "`{origin}` is not an origin (scheme://host[:port], nothing after it)"
        ));
    }
    Ok(url.origin().ascii_serialization())
}

/// A positive number of seconds, decimals allowed (`30`, `0.5`).
fn parse_seconds(value: &str) -> Result<std::time::Duration, String> {
    let seconds: f64 = value
        .trim()
        .parse()
        .map_err(|_| format!("{value:?} is not a number of seconds"))?;
    std::time::Duration::try_from_secs_f64(seconds)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("{value:?} is not a positive number of seconds"))
}

/// Payment providers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PaymentProviderKind {
    /// Bank transfer, marked paid by staff.
    Manual,
    /// Stripe.
    Stripe,
}

/// Deployment mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Environment {
    /// Local development: convenient defaults.
    Development,
    /// Production: no generated secrets.
    Production,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Pretty,
    /// One JSON object per line.
    Json,
}

fn generate_secret() -> String {
    use base64::Engine;
    use rand::RngCore;
    let mut bytes = [0u8; 48];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(unix)]
fn write_private(path: &std::path::Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(contents.as_bytes())
}

#[cfg(not(unix))]
fn write_private(path: &std::path::Path, contents: &str) -> std::io::Result<()> {
    std::fs::write(path, contents)
}

#[cfg(test)]
mod tests {
    use super::parse_origin;

    /// The defaults are the flags' (an environment variable set for this process does not
    /// reach them).
    #[test]
    fn the_defaults_are_the_flags_defaults() {
        let config = super::Config::defaults().expect("defaults");
        assert_eq!(config.database.url, "sqlite://platform.db");
        assert_eq!(config.http.bind_addr.to_string(), "127.0.0.1:8080");
        assert_eq!(config.billing.dunning_retry_days, "3,5,7");
        assert_eq!(config.billing.usage_grace(), chrono::Duration::days(3));
        assert_eq!(config.limits.plan_max_seats, 50);
        assert_eq!(
            config.http.request_timeout,
            std::time::Duration::from_secs(30)
        );
        assert!(config.stripe.secret_key.is_none());
    }

    #[test]
    fn a_short_metrics_token_is_refused_without_repeating_it() {
        use clap::Parser;
        #[derive(Parser)]
        struct Settings {
            #[command(flatten)]
            config: super::Config,
        }
        let with = |token: &str| {
            Settings::try_parse_from(["platform", "--metrics-token", token])
                .map(|s| s.config)
                .map_err(|e| e.to_string())
        };
        let short = with("short-metrics-secret").expect("parsed");
        let refused = short
            .telemetry
            .metrics_token()
            .expect_err("too short")
            .to_string();
        assert!(refused.contains("at least 32"), "{refused}");
        assert!(!refused.contains("short-metrics-secret"), "{refused}");
        let long = with("a-metrics-token-long-enough-0123456789").expect("parsed");
        assert!(long.telemetry.metrics_token().expect("accepted").is_some());
    }

    #[test]
    fn an_origin_is_scheme_host_and_port_and_nothing_else() {
        assert_eq!(
            parse_origin("https://App.example.com").unwrap(),
            "https://app.example.com"
        );
        assert_eq!(
            parse_origin(" http://localhost:5173/").unwrap(),
            "http://localhost:5173"
        );
        for bad in [
            "app.example.com",
            "https://app.example.com/path",
            "https://app.example.com?x=1",
            "ftp://x.example",
            "https://u:p@x.example",
            "*",
            "",
        ] {
            assert!(parse_origin(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
