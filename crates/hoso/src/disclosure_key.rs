//! `hoso disclosure-key new FILE`: the province's Ed25519 key pair for signing disclosures.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use hoso_disclosure::SigningKey;

use crate::out::outln;

/// The province's disclosure signing key.
#[derive(clap::Subcommand)]
pub(crate) enum DisclosureKeyCommand {
    /// Make a new key pair: FILE gets the private key (PKCS#8 PEM, readable by its owner only;
    /// the server's `[disclosure] signing_key_file`), FILE.pub the public key to publish (PEM).
    New {
        /// Where to write the private key; the public key goes to FILE.pub.
        file: PathBuf,
    },
}

pub(crate) fn run(command: DisclosureKeyCommand) -> Result<()> {
    let DisclosureKeyCommand::New { file } = command;
    let public_file = PathBuf::from(format!("{}.pub", file.display()));
    for path in [&file, &public_file] {
        if path.exists() {
            bail!(
                "{} exists; a key pair is never replaced (disclosures signed with it would no longer verify against a newly published key): choose another FILE",
                path.display()
            );
        }
    }
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|err| anyhow::anyhow!("cannot draw a random key from the system: {err}"))?;
    let key = SigningKey::from_bytes(&seed);
    let (secret, public) = hoso_disclosure::signature::key_pair_pem(&key)?;
    write_new(&file, secret.as_bytes(), true)?;
    write_new(&public_file, public.as_bytes(), false)?;
    outln!(
        "wrote the private key to {} (keep it secret; only the server reads it: [disclosure] signing_key_file)",
        file.display()
    );
    outln!(
        "wrote the public key to {} (publish it: auditors check disclosures against it)",
        public_file.display()
    );
    outln!("public key: {}", hex::encode(key.verifying_key().as_bytes()));
    Ok(())
}

/// Creates `path` with `bytes`, readable by its owner only when `private`.
fn write_new(path: &Path, bytes: &[u8], private: bool) -> Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(if private { 0o600 } else { 0o644 });
    }
    #[cfg(not(unix))]
    let _ = private;
    let mut out = options
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    out.write_all(bytes)
        .and_then(|()| out.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))
}
