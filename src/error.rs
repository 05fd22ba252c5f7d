//! The crate's one error, and the one table of exit codes an operator alerts on.
//!
//! In: every stage's own error (`#[from]`), and the outcomes that are not errors but still exit
//! non-zero (findings). Out: [`Error::exit`], the documented code, and a message with its
//! causes. It decides no behaviour: stages fail as they must, and this only names the outcome.

use std::path::PathBuf;

use crate::api::paging::PagingError;
use crate::audit::AuditError;
use crate::config::ConfigError;
use crate::emulator::server::ServeError;
use crate::emulator::world::WorldError;
use crate::onboard::OnboardError;
use crate::pipeline::RunError;
use crate::pipeline::stages::StageError;
use crate::sink::delta::DeltaError;
use crate::sink::lock::LockError;
use crate::sink::store::StoreError;

/// What a command's end tells the operator: the process exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Everything went well (diff: no differences; verify: every file matches).
    Ok,
    /// Finished, with findings to look at.
    Findings,
    /// The command line or the configuration is wrong.
    Usage,
    /// Credentials were refused.
    Auth,
    /// The API failed in a way retries could not fix.
    Api,
    /// Data could not be read.
    Data,
    /// Output could not be written.
    Io,
    /// Another run holds the output folder's lock.
    Busy,
    /// A defect of pcrecon: a thread or task of the run panicked.
    Internal,
    /// Stopped by SIGINT (Ctrl-C) before the run finished, as a kill would stop it.
    Interrupted,
    /// Stopped by SIGTERM before the run finished, as a kill would stop it.
    Terminated,
}

impl Exit {
    /// Every outcome, in code order, with what it means: `--help` and the README show this table.
    pub const TABLE: [(Exit, &'static str); 11] = [
        (Exit::Ok, "ok (diff: no differences; verify: every file matches)"),
        (
            Exit::Findings,
            "finished with findings: published with rejected records, without its Delta commit, or, as\n     --fail-on asks, with mismatches, sequences not ready, restated invoices or exceptions; diff: the snapshots differ; verify: a file is missing,\n     altered, extra or listed outside the snapshot, a row count or control total is not what the\n     files hold, or a snapshot of the folder cannot be verified",
        ),
        (Exit::Usage, "usage or configuration error"),
        (
            Exit::Auth,
            "authentication refused (also: multi-factor authentication required, 900421; an object store refusing the credentials of the environment)",
        ),
        (Exit::Api, "the API failed after retries"),
        (
            Exit::Data,
            "bad data (a value that does not fit its column, a missing exchange rate, not a snapshot, a snapshot that cannot be read back)",
        ),
        (Exit::Io, "output I/O error (also: an object store failed an upload; LATEST there is unchanged)"),
        (Exit::Busy, "another run holds the output folder's (or the object-store prefix's) lock"),
        (Exit::Internal, "internal error: a thread or task of the run panicked (a defect; the log has it)"),
        (Exit::Interrupted, "stopped by SIGINT (Ctrl-C), as a kill would stop the run; a rerun resumes it"),
        (Exit::Terminated, "stopped by SIGTERM, as a kill would stop the run; a rerun resumes it"),
    ];

    /// The process exit code.
    pub fn code(self) -> u8 {
        match self {
            Exit::Ok => 0,
            Exit::Findings => 1,
            Exit::Usage => 2,
            Exit::Auth => 3,
            Exit::Api => 4,
            Exit::Data => 5,
            Exit::Io => 6,
            Exit::Busy => 7,
            Exit::Internal => 8,
            Exit::Interrupted => 130,
            Exit::Terminated => 143,
        }
    }

    /// The table as `--help` prints it.
    pub fn help() -> String {
        let mut text = String::from("Exit codes:");
        for (exit, meaning) in Exit::TABLE {
            text.push_str(&format!("\n  {}  {meaning}", exit.code()));
        }
        text
    }
}

/// Why a command did not end with 0.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A run or an extraction failed.
    #[error(transparent)]
    Run(#[from] RunError),
    /// The configuration is wrong.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// `diff` or `verify` could not do its work.
    #[error(transparent)]
    Audit(#[from] AuditError),
    /// The emulator could not serve.
    #[error(transparent)]
    Serve(#[from] ServeError),
    /// A world could not be generated.
    #[error(transparent)]
    World(#[from] WorldError),
    /// `auth login` or `auth check` did not succeed.
    #[error(transparent)]
    Onboard(#[from] OnboardError),
    /// The command line asks for something that makes no sense.
    #[error("{0}")]
    Usage(String),
    /// A file could not be written.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The command did its work, and found something the operator asked to be told of.
    #[error("{0}")]
    Findings(String),
}

impl Error {
    /// The documented outcome of this error.
    pub fn exit(&self) -> Exit {
        match self {
            Error::Run(e) => run_exit(e),
            Error::Config(_) | Error::Usage(_) => Exit::Usage,
            Error::Audit(AuditError::Io { .. }) => Exit::Io,
            Error::Audit(AuditError::NotASnapshot(_)) => Exit::Data,
            Error::Serve(ServeError::World { .. }) => Exit::Data,
            Error::Serve(ServeError::Start(_)) => Exit::Io,
            Error::World(WorldError::Invalid(_)) => Exit::Usage,
            Error::World(_) | Error::Io { .. } => Exit::Io,
            Error::Findings(_) => Exit::Findings,
            Error::Onboard(OnboardError::Config(_)) => Exit::Usage,
            Error::Onboard(OnboardError::Write { .. } | OnboardError::Start(_)) => Exit::Io,
            Error::Onboard(e) if e.is_refusal() => Exit::Auth,
            Error::Onboard(_) => Exit::Api,
        }
    }

    /// The message with every cause below it, `: `-joined (once each).
    pub fn report(&self) -> String {
        let mut text = String::new();
        for cause in self.causes() {
            if !text.contains(&cause) {
                if !text.is_empty() {
                    text.push_str(": ");
                }
                text.push_str(&cause);
            }
        }
        text
    }

    /// The message, then the message of each cause below it.
    pub fn causes(&self) -> Vec<String> {
        let mut causes = vec![self.to_string()];
        let mut source = std::error::Error::source(self);
        while let Some(cause) = source {
            causes.push(cause.to_string());
            source = cause.source();
        }
        causes
    }
}

/// What the operator has to do about a failed run.
fn run_exit(e: &RunError) -> Exit {
    match e {
        RunError::Config(_) => Exit::Usage,
        RunError::Extract(PagingError::Api(api)) if api.is_auth() => Exit::Auth,
        RunError::Extract(PagingError::Api(_) | PagingError::Export { .. }) => Exit::Api,
        RunError::Extract(PagingError::Malformed { .. } | PagingError::BadLink { .. }) => Exit::Data,
        RunError::Extract(PagingError::Closed | PagingError::Cache(_)) => Exit::Io,
        RunError::Extract(PagingError::Task(_)) | RunError::Panicked(_) => Exit::Internal,
        RunError::Stage(
            StageError::Data(_)
            | StageError::Fx(_)
            | StageError::Batch(_)
            | StageError::Rebill(_)
            | StageError::Focus(_),
        )
        | RunError::Replay(_) => Exit::Data,
        RunError::Stage(StageError::Io { .. }) => Exit::Io,
        RunError::Lock(LockError::Busy { .. }) => Exit::Busy,
        RunError::Store(e) | RunError::Delta(DeltaError::Store(e)) => store_exit(e),
        RunError::Lock(LockError::Io { .. } | LockError::Store { .. })
        | RunError::Delta(_)
        | RunError::Dump(_)
        | RunError::Io { .. }
        | RunError::Start(_) => Exit::Io,
    }
}

/// An object store's failure: its configuration or credentials (the URL, the environment), a
/// refusal of them, a lock another run took over, or else output I/O.
fn store_exit(e: &StoreError) -> Exit {
    match e {
        StoreError::Open { .. } => Exit::Usage,
        StoreError::Request {
            source: object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. },
            ..
        } => Exit::Auth,
        StoreError::LockLost { .. } => Exit::Busy,
        StoreError::Request { .. } | StoreError::Mismatch { .. } | StoreError::Local { .. } => Exit::Io,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_outcome_has_its_own_code_and_the_help_lists_them_in_order() {
        let codes: Vec<u8> = Exit::TABLE.iter().map(|(e, _)| e.code()).collect();
        assert_eq!(codes, (0..9).chain([130, 143]).collect::<Vec<u8>>(), "128 + the signal's number after one");
        let help = Exit::help();
        for code in codes {
            assert!(help.contains(&format!("\n  {code}  ")), "{help}");
        }
        let busy = LockError::Busy { at: "out/.pcrecon.lock".into(), holder: "pid 1".into() };
        assert_eq!(Error::Run(RunError::Lock(busy)).exit(), Exit::Busy);
        assert_eq!(Error::Run(RunError::Extract(PagingError::Task("panicked".into()))).exit().code(), 8);
        assert_eq!(Error::Run(RunError::Panicked("writer")).exit(), Exit::Internal);
        assert_eq!(Error::Audit(AuditError::NotASnapshot("x".into())).exit().code(), 5);
        assert_eq!(Error::Findings("differs".into()).exit().code(), 1);
    }
}
