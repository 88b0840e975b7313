//! One module per subcommand; each exposes `XArgs` (clap) and `run(XArgs) -> Result<ExitCode>`.

pub mod audit;
pub mod dev;
pub mod keys;
pub mod lint;
pub mod migrate;
pub mod policy;
pub mod report;
pub mod revoke;
pub mod scan;
pub mod serve;
pub mod sessions;
pub mod sigv4;
