//! The seal: read back from every format, its signature checked, and the document rendered again
//! from the same figures byte for byte.

use super::{FORMATS, options, reports};
use crate::signature::{
    LogHead, Seal, SealError, SigningKey, key_pair_pem, public_key_from_text, signing_key_from_pem,
};
use hoso_projections::fixtures::B;

use crate::{Format, Language, Options, render, render_again, render_sealed};

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

const HEAD: LogHead = LogHead {
    position: 42,
    hash: [7; 32],
};

#[tokio::test]
async fn every_format_carries_a_seal_that_checks_and_renders_again_to_the_same_bytes() {
    let (current, previous) = reports().await;
    for format in FORMATS {
        for language in [Language::Vi, Language::En] {
            let options = Options {
                language,
                ..options(format)
            };
            let sealed = render_sealed(&current, &previous, &options, HEAD, Some(&key(1))).unwrap();
            let (found, seal) = Seal::read(&sealed).unwrap();
            assert_eq!(found, format);
            let statement = &seal.statement;
            assert_eq!(statement.log_position, 42);
            assert_eq!(statement.head_hash(), Ok([7; 32]));
            assert_eq!(statement.cutoff(), Ok(current.cutoff));
            assert_eq!(statement.period(), Ok(current.period));
            assert_eq!(statement.options().as_ref(), Ok(&options));
            assert_eq!(seal.check_signature(), Ok(key(1).verifying_key()));
            let json = Options {
                format: Format::Json,
                ..options.clone()
            };
            assert_eq!(
                statement.figures_sha256,
                hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
                    render(&current, &previous, &json).unwrap()
                ))
            );
            assert!(
                render_again(&current, &previous, &seal).unwrap() == sealed,
                "{format:?} {language:?}: rendered again, the document differs"
            );
            let mut changed = current.clone();
            changed.agencies.get_mut(B).unwrap().on_time.ratio.numerator += 1;
            assert!(render_again(&changed, &previous, &seal).unwrap() != sealed);
        }
    }
}

#[tokio::test]
async fn a_changed_signature_statement_or_key_does_not_check() {
    let (current, previous) = reports().await;
    let sealed = render_sealed(&current, &previous, &options(Format::Html), HEAD, Some(&key(1))).unwrap();
    let (_, seal) = Seal::read(&sealed).unwrap();

    let mut signature = seal.clone();
    let flipped = if signature.signature.starts_with('0') { "1" } else { "0" };
    signature.signature.replace_range(0..1, flipped);
    assert!(matches!(signature.check_signature(), Err(SealError::BadSignature(_))));

    let mut statement = seal.clone();
    statement.statement.log_position += 1;
    assert!(matches!(statement.check_signature(), Err(SealError::BadSignature(_))));

    // Another key named in the statement: the signature is not its.
    let mut other = seal.clone();
    other.statement.public_key = hex::encode(key(2).verifying_key().as_bytes());
    assert!(matches!(other.check_signature(), Err(SealError::BadSignature(_))));

    let unsigned = render_sealed(&current, &previous, &options(Format::Html), HEAD, None).unwrap();
    let (_, unsigned) = Seal::read(&unsigned).unwrap();
    assert_eq!(unsigned.check_signature(), Err(SealError::Unsigned));
    assert_eq!(
        Seal::read(&render(&current, &previous, &options(Format::Csv)).unwrap()).map(|_| ()),
        Err(SealError::Missing("csv"))
    );
}

#[test]
fn key_files_read_back_and_name_what_they_are_not() {
    let (secret, public) = key_pair_pem(&key(3)).unwrap();
    assert!(secret.starts_with("-----BEGIN PRIVATE KEY-----"), "{secret}");
    assert!(public.starts_with("-----BEGIN PUBLIC KEY-----"), "{public}");
    assert_eq!(signing_key_from_pem(&secret).unwrap().to_bytes(), key(3).to_bytes());
    assert_eq!(public_key_from_text(&public), Ok(key(3).verifying_key()));
    let hex = hex::encode(key(3).verifying_key().as_bytes());
    assert_eq!(public_key_from_text(&format!("{hex}\n")), Ok(key(3).verifying_key()));
    assert!(matches!(signing_key_from_pem(&public), Err(SealError::Key(m)) if m.contains("PKCS#8")));
    assert!(matches!(public_key_from_text("not a key"), Err(SealError::Key(m)) if m.contains("64 hexadecimal")));
}
