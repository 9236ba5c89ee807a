//! The command line never shows secret values, whatever the environment holds.

#![allow(clippy::expect_used)]

use std::process::Command;

/// Secret-looking values, one per variable that may hold a secret.
const SECRETS: &[(&str, &str)] = &[
    (
        "DATABASE_URL",
        "postgres://platform_app:hunter2-db-password@db.internal/platform",
    ),
    (
        "MIGRATE_DATABASE_URL",
        "postgres://owner:hunter2-owner-password@db.internal/platform",
    ),
    ("TOKEN_SECRET", "hunter2-token-secret-0123456789abcdef"),
    ("STRIPE_SECRET_KEY", "sk_live_hunter2stripesecret"),
    ("STRIPE_WEBHOOK_SECRET", "whsec_hunter2webhooksecret"),
];

fn help(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_platform"))
        .args(args)
        .envs(SECRETS.iter().copied())
        .output()
        .expect("the platform binary runs");
    assert!(output.status.success(), "{args:?} failed: {output:?}");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn help_never_prints_secret_values_from_the_environment() {
    for args in [
        &["--help"][..],
        &["serve", "--help"],
        &["migrate", "--help"],
    ] {
        let text = help(args);
        if args == ["--help"] {
            assert!(
                text.contains("[env: DATABASE_URL]") && text.contains("[env: STRIPE_SECRET_KEY]"),
                "the variables are still documented:\n{text}"
            );
        }
        for (name, value) in SECRETS {
            assert!(
                !text.contains(value) && !text.contains("hunter2"),
                "{args:?} shows the value of {name}:\n{text}"
            );
        }
    }
}
