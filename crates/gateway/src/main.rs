//! The `platform` binary: see `gateway::cli`.

fn main() -> anyhow::Result<()> {
    gateway::cli::main()
}
