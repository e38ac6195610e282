//! The five targets. Each takes any bytes and returns the signature of its outcome (which
//! path it took, without the values) or the property it found broken; a panic is a finding too.

mod convert;
mod due_date;
mod import_line;
mod snapshot;
mod store_open;

use anyhow::{Context as _, Result};

pub use store_open::StoreTemplate;

pub(crate) use import_line::{as_imported, decide_history};
pub(crate) use snapshot::STORE_ID as SNAPSHOT_STORE_ID;

/// What the targets share across runs: a runtime for the store's async API and the store
/// template, built on first use.
pub struct Context {
    runtime: tokio::runtime::Runtime,
    template: Option<StoreTemplate>,
}

impl Context {
    /// A context; the store template is built when the store target first runs.
    pub fn new() -> Result<Context> {
        store_open::install_warning_counter();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start a tokio runtime")?;
        Ok(Context {
            runtime,
            template: None,
        })
    }
}

/// A fuzz target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Opening a store directory whose files were damaged, then reading it back.
    StoreOpen,
    /// The projection snapshot decoder.
    Snapshot,
    /// Protobuf bytes of a desk request to a domain command.
    Convert,
    /// An import line to its commands, decided in order.
    ImportLine,
    /// Due dates and working days.
    DueDate,
}

impl Target {
    /// Every target, in the order runs take them.
    pub const ALL: [Target; 5] = [
        Target::StoreOpen,
        Target::Snapshot,
        Target::Convert,
        Target::ImportLine,
        Target::DueDate,
    ];

    /// The name used on the command line and for the corpus directories.
    pub fn name(self) -> &'static str {
        match self {
            Target::StoreOpen => "store_open",
            Target::Snapshot => "snapshot",
            Target::Convert => "convert",
            Target::ImportLine => "import_line",
            Target::DueDate => "due_date",
        }
    }

    /// The target of a name.
    pub fn from_name(name: &str) -> Option<Target> {
        Target::ALL.into_iter().find(|t| t.name() == name)
    }

    /// The longest input worth trying.
    pub fn max_len(self) -> usize {
        match self {
            Target::StoreOpen => 256,
            Target::DueDate => 64,
            Target::Snapshot | Target::Convert | Target::ImportLine => 64 << 10,
        }
    }

    /// Tokens the mutator inserts: pieces of the input's own language.
    pub fn dictionary(self) -> &'static [&'static [u8]] {
        match self {
            Target::ImportLine => import_line::DICTIONARY,
            Target::Convert => convert::DICTIONARY,
            Target::StoreOpen | Target::Snapshot | Target::DueDate => &[],
        }
    }

    /// Runs one input: the outcome's signature, or the property broken.
    pub fn run(self, ctx: &mut Context, data: &[u8]) -> Result<String, String> {
        match self {
            Target::StoreOpen => store_open::run(ctx, data),
            Target::Snapshot => snapshot::run(data),
            Target::Convert => convert::run(data),
            Target::ImportLine => import_line::run(data),
            Target::DueDate => due_date::run(data),
        }
    }
}

/// Reads integers off the front of an input, zeros once it runs out.
pub(crate) struct Bytes<'a>(pub(crate) &'a [u8]);

impl Bytes<'_> {
    pub(crate) fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }

    pub(crate) fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }

    pub(crate) fn u64(&mut self) -> u64 {
        u64::from(self.u32()) | (u64::from(self.u32()) << 32)
    }
}

/// The fixed "now" of decisions, so that an input decides the same way on every run.
pub(crate) fn fixed_now() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(1_798_761_600, 0).unwrap_or_default()
}
