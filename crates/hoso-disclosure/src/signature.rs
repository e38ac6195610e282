//! A disclosure anyone can check: the seal every document carries.
//!
//! **The statement.** A small JSON document ([`Statement`], format
//! `hoso-disclosure-statement/1`) saying what the disclosure counted: the province, the period,
//! the cut-off, the log's position at the cut-off (the number of events of `$all` recorded by
//! then, `log_position`), the log's head hash there (`hoso_store::head_hash`: a SHA-256 chained
//! over every one of those events' chain hashes), the SHA-256 of the figures' canonical form
//! (the disclosure's JSON document, schema `hoso-disclosure/2`, rendered with the same options),
//! what the document was rendered with (format, language, agency names, letter) and the
//! province's Ed25519 public key. Its canonical bytes are its compact JSON with keys sorted
//! (the structs' fields are declared in that order; no floats, UTF-8): the signature is over
//! those bytes.
//!
//! **The seal** ([`Seal`]) is the statement with its signature (hex; empty when the server has
//! no key), embedded in every format:
//! - HTML: a visible "how to verify" section at the end, and the seal in
//!   `<script type="application/json" id="hoso-seal">` (`<`, `>` and `&` escaped as `\u003c`…);
//! - XLSX: a last sheet ("Kiểm chứng" / "Verification") with the same text, and rows whose first
//!   cell is `hoso-seal` holding the seal's JSON in pieces of at most 8,000 characters;
//! - CSV: a last table, after a blank line, whose `hoso-seal` row holds the seal's JSON;
//! - JSON: a last key `"seal"`.
//!
//! **Checking** ([`Seal::read`], [`Seal::check_signature`], [`render_again`]): the signature
//! over the statement; then, from a copy of the log, the head hash at `log_position`, and the
//! figures recomputed there: rendered again with the statement's options and this seal, they
//! give the file byte for byte, and their JSON its `figures_sha256`.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{Signature, Signer as _, Verifier as _};
pub use ed25519_dalek::{SigningKey, VerifyingKey};
use hoso_projections::Period;
use hoso_projections::figures::Report;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{DisclosureError, Format, Language, Letter, Options};

/// The statement's format.
pub const STATEMENT_FORMAT: &str = "hoso-disclosure-statement/1";

/// The first cell of the XLSX and CSV rows that hold the seal.
const SEAL_KEY: &str = "hoso-seal";
/// The HTML element that holds the seal.
const SCRIPT_OPEN: &str = r#"<script type="application/json" id="hoso-seal">"#;
/// An XLSX cell holds at most 32,767 characters: the seal is cut into pieces well under that.
const XLSX_PIECE: usize = 8_000;

/// Where the disclosure's cut-off falls in the log: the number of events recorded by then and
/// the head hash over them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogHead {
    /// The number of events of `$all` counted (positions `0..position`).
    pub position: u64,
    /// `hoso_store::head_hash` at `position`.
    pub hash: [u8; 32],
}

/// What a disclosure counted, as signed. Fields are in alphabetical order so that the compact
/// JSON has sorted keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Statement {
    /// The cut-off, RFC 3339 in UTC, to the nanosecond as given.
    pub cutoff: String,
    /// SHA-256 (hex) of the disclosure's JSON document with the same options.
    pub figures_sha256: String,
    /// [`STATEMENT_FORMAT`].
    pub format: String,
    /// The log's head hash (hex) at `log_position`.
    pub head_hash: String,
    /// The number of events of `$all` recorded by the cut-off, which the figures count.
    pub log_position: u64,
    /// The period: its first day and the day after its last, `YYYY-MM-DD`.
    pub period: StatementPeriod,
    /// The province's name.
    pub province: String,
    /// The Ed25519 public key (hex) that signed it; empty when unsigned.
    pub public_key: String,
    /// What the document was rendered with.
    pub render: Rendering,
}

/// The period of a [`Statement`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatementPeriod {
    /// The day after the period's last, excluded.
    pub end: String,
    /// The period's first day.
    pub start: String,
}

/// The options a document was rendered with, so that a checker renders it again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rendering {
    /// The agencies' names by code.
    pub agency_names: BTreeMap<String, String>,
    /// `html`, `csv`, `json` or `xlsx`.
    pub document: String,
    /// `vi` or `en`.
    pub language: String,
    /// The letter's heading and signature block.
    pub letter: StatementLetter,
}

/// The [`Letter`] of a [`Rendering`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatementLetter {
    /// [`Letter::issuing_body`].
    pub issuing_body: String,
    /// [`Letter::number_format`].
    pub number_format: String,
    /// [`Letter::place`].
    pub place: String,
    /// [`Letter::signer_name`].
    pub signer_name: String,
    /// [`Letter::signer_title`].
    pub signer_title: String,
}

/// A statement and its signature, as embedded in a document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Seal {
    /// The Ed25519 signature (hex) over the statement's canonical bytes; empty when unsigned.
    pub signature: String,
    /// What was signed.
    pub statement: Statement,
}

/// A seal, a key or a statement that cannot be read or does not check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// The document carries no seal.
    #[error("the {0} document carries no seal (made by a server before signed disclosures, or the seal was removed)")]
    Missing(&'static str),
    /// The document is not one of the disclosure's formats.
    #[error("the file is not a disclosure document (html, csv, json or xlsx)")]
    UnknownFormat,
    /// The seal or a field of its statement cannot be read.
    #[error("the seal cannot be read: {0}")]
    Malformed(String),
    /// The statement was not signed.
    #[error("the statement is not signed: the server had no [disclosure] signing_key_file")]
    Unsigned,
    /// The signature does not match the statement and its public key.
    #[error("the signature does not match the statement and the public key it names {0}")]
    BadSignature(String),
    /// A key file cannot be read.
    #[error("{0}")]
    Key(String),
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn format_name(format: Format) -> &'static str {
    match format {
        Format::Json => "json",
        Format::Csv => "csv",
        Format::Html => "html",
        Format::Xlsx => "xlsx",
    }
}

impl Statement {
    /// The statement's canonical bytes: what is signed.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        // A struct of strings, integers and string maps always serializes.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// The cut-off.
    pub fn cutoff(&self) -> Result<DateTime<Utc>, SealError> {
        DateTime::parse_from_rfc3339(&self.cutoff)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|err| SealError::Malformed(format!("cutoff {:?} is not an RFC 3339 time: {err}", self.cutoff)))
    }

    /// The period.
    pub fn period(&self) -> Result<Period, SealError> {
        let day = |field: &str, text: &str| {
            NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .map_err(|_| SealError::Malformed(format!("period.{field} {text:?} is not a date like 2026-06-01")))
        };
        let (start, end) = (day("start", &self.period.start)?, day("end", &self.period.end)?);
        Period::new(start, end).map_err(|err| SealError::Malformed(format!("period: {err}")))
    }

    /// The head hash.
    pub fn head_hash(&self) -> Result<[u8; 32], SealError> {
        hash32("head_hash", &self.head_hash)
    }

    /// The options the document was rendered with.
    pub fn options(&self) -> Result<Options, SealError> {
        let format = match self.render.document.as_str() {
            "json" => Format::Json,
            "csv" => Format::Csv,
            "html" => Format::Html,
            "xlsx" => Format::Xlsx,
            other => {
                return Err(SealError::Malformed(format!(
                    "render.document {other:?} is not a format"
                )));
            }
        };
        let language = match self.render.language.as_str() {
            "vi" => Language::Vi,
            "en" => Language::En,
            other => {
                return Err(SealError::Malformed(format!(
                    "render.language {other:?} is not vi or en"
                )));
            }
        };
        let letter = &self.render.letter;
        Ok(Options {
            format,
            language,
            province_name: self.province.clone(),
            agency_names: self.render.agency_names.clone(),
            letter: Letter {
                issuing_body: letter.issuing_body.clone(),
                number_format: letter.number_format.clone(),
                place: letter.place.clone(),
                signer_title: letter.signer_title.clone(),
                signer_name: letter.signer_name.clone(),
            },
        })
    }
}

fn hash32(field: &str, text: &str) -> Result<[u8; 32], SealError> {
    let mut out = [0; 32];
    hex::decode_to_slice(text, &mut out)
        .map_err(|_| SealError::Malformed(format!("{field} {text:?} is not 64 hexadecimal digits")))?;
    Ok(out)
}

/// The SHA-256 (hex) of the figures' canonical form: the disclosure's JSON document with these
/// options.
pub fn figures_sha256(current: &Report, previous: &Report, options: &Options) -> Result<String, DisclosureError> {
    let json = Options {
        format: Format::Json,
        ..options.clone()
    };
    Ok(sha256_hex(&crate::render(current, previous, &json)?))
}

/// The seal of the disclosure of `current` against `previous` with `options`, counted at `head`,
/// signed with `key` when there is one.
pub fn seal(
    current: &Report,
    previous: &Report,
    options: &Options,
    head: LogHead,
    key: Option<&SigningKey>,
) -> Result<Seal, DisclosureError> {
    let letter = &options.letter;
    let statement = Statement {
        cutoff: current.cutoff.to_rfc3339_opts(SecondsFormat::AutoSi, true),
        figures_sha256: figures_sha256(current, previous, options)?,
        format: STATEMENT_FORMAT.to_owned(),
        head_hash: hex::encode(head.hash),
        log_position: head.position,
        period: StatementPeriod {
            end: current.period.end.format("%Y-%m-%d").to_string(),
            start: current.period.start.format("%Y-%m-%d").to_string(),
        },
        province: options.province_name.clone(),
        public_key: key
            .map(|k| hex::encode(k.verifying_key().as_bytes()))
            .unwrap_or_default(),
        render: Rendering {
            agency_names: options.agency_names.clone(),
            document: format_name(options.format).to_owned(),
            language: match options.language {
                Language::Vi => "vi",
                Language::En => "en",
            }
            .to_owned(),
            letter: StatementLetter {
                issuing_body: letter.issuing_body.clone(),
                number_format: letter.number_format.clone(),
                place: letter.place.clone(),
                signer_name: letter.signer_name.clone(),
                signer_title: letter.signer_title.clone(),
            },
        },
    };
    let signature = key
        .map(|k| hex::encode(k.sign(&statement.canonical_bytes()).to_bytes()))
        .unwrap_or_default();
    Ok(Seal { signature, statement })
}

/// Renders the disclosure with its seal: [`seal`], then the document carrying it.
pub fn render_sealed(
    current: &Report,
    previous: &Report,
    options: &Options,
    head: LogHead,
    key: Option<&SigningKey>,
) -> Result<Vec<u8>, DisclosureError> {
    let seal = seal(current, previous, options, head, key)?;
    crate::render_with(current, previous, options, Some(&seal))
}

/// Renders the disclosure again from recomputed reports, with the options its statement names
/// and the seal itself: the bytes of the original file when the figures are the same.
pub fn render_again(current: &Report, previous: &Report, seal: &Seal) -> Result<Vec<u8>, SealError> {
    let options = seal.statement.options()?;
    crate::render_with(current, previous, &options, Some(seal)).map_err(|err| SealError::Malformed(err.to_string()))
}

impl Seal {
    /// The seal's JSON, compact.
    fn to_json(&self) -> String {
        // Strings, integers and string maps always serialize.
        serde_json::to_string(self).unwrap_or_default()
    }

    fn from_json(text: &str) -> Result<Seal, SealError> {
        serde_json::from_str(text).map_err(|err| SealError::Malformed(err.to_string()))
    }

    /// Finds the seal in a disclosure document of any format, and that format.
    pub fn read(document: &[u8]) -> Result<(Format, Seal), SealError> {
        let text = |bytes: &[u8]| String::from_utf8(bytes.to_vec()).map_err(|_| SealError::UnknownFormat);
        if document.starts_with(b"PK") {
            return read_xlsx(document).map(|seal| (Format::Xlsx, seal));
        }
        if let Some(csv) = document.strip_prefix("\u{feff}".as_bytes()) {
            return read_csv(csv).map(|seal| (Format::Csv, seal));
        }
        let document = text(document)?;
        if document.starts_with("<!DOCTYPE html") {
            let start = document.find(SCRIPT_OPEN).ok_or(SealError::Missing("html"))? + SCRIPT_OPEN.len();
            let end = document[start..]
                .find("</script>")
                .ok_or_else(|| SealError::Malformed("the seal's script element is not closed".to_owned()))?;
            return Seal::from_json(&document[start..start + end]).map(|seal| (Format::Html, seal));
        }
        if document.starts_with('{') {
            let value: serde_json::Value =
                serde_json::from_str(&document).map_err(|err| SealError::Malformed(err.to_string()))?;
            let seal = value.get("seal").ok_or(SealError::Missing("json"))?;
            return serde_json::from_value(seal.clone())
                .map(|seal| (Format::Json, seal))
                .map_err(|err| SealError::Malformed(err.to_string()));
        }
        Err(SealError::UnknownFormat)
    }

    /// Checks the signature against the public key the statement names, and returns that key.
    pub fn check_signature(&self) -> Result<VerifyingKey, SealError> {
        if self.signature.is_empty() || self.statement.public_key.is_empty() {
            return Err(SealError::Unsigned);
        }
        let key = public_key_from_hex(&self.statement.public_key)?;
        let mut bytes = [0; 64];
        hex::decode_to_slice(&self.signature, &mut bytes).map_err(|_| {
            SealError::Malformed(format!("signature {:?} is not 128 hexadecimal digits", self.signature))
        })?;
        key.verify(&self.statement.canonical_bytes(), &Signature::from_bytes(&bytes))
            .map_err(|_| SealError::BadSignature(self.statement.public_key.clone()))?;
        Ok(key)
    }
}

fn read_xlsx(document: &[u8]) -> Result<Seal, SealError> {
    use calamine::{DataType as _, Reader, Xlsx};
    let mut workbook = Xlsx::new(std::io::Cursor::new(document))
        .map_err(|err| SealError::Malformed(format!("the workbook cannot be read: {err}")))?;
    for name in workbook.sheet_names() {
        let range = workbook
            .worksheet_range(&name)
            .map_err(|err| SealError::Malformed(format!("sheet {name:?} cannot be read: {err}")))?;
        let pieces: Vec<String> = range
            .rows()
            .filter(|row| row.first().and_then(|c| c.get_string()) == Some(SEAL_KEY))
            .filter_map(|row| row.get(1).and_then(|c| c.get_string()).map(str::to_owned))
            .collect();
        if !pieces.is_empty() {
            return Seal::from_json(&pieces.concat());
        }
    }
    Err(SealError::Missing("xlsx"))
}

fn read_csv(document: &[u8]) -> Result<Seal, SealError> {
    let mut reader = ::csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(document);
    for record in reader.records() {
        let record = record.map_err(|err| SealError::Malformed(format!("the csv cannot be read: {err}")))?;
        if record.get(0) == Some(SEAL_KEY) {
            return Seal::from_json(record.get(1).unwrap_or_default());
        }
    }
    Err(SealError::Missing("csv"))
}

/// A public key from its hex (64 digits).
pub fn public_key_from_hex(text: &str) -> Result<VerifyingKey, SealError> {
    let bytes = hash32("public_key", text.trim())?;
    VerifyingKey::from_bytes(&bytes)
        .map_err(|_| SealError::Malformed(format!("public_key {text:?} is not an Ed25519 public key")))
}

/// A public key from a file's text: SPKI PEM (`-----BEGIN PUBLIC KEY-----`, as
/// `hoso disclosure-key new` and OpenSSL write it) or 64 hex digits.
pub fn public_key_from_text(text: &str) -> Result<VerifyingKey, SealError> {
    if text.contains("-----BEGIN") {
        VerifyingKey::from_public_key_pem(text)
            .map_err(|err| SealError::Key(format!("not an Ed25519 public key in PEM: {err}")))
    } else {
        public_key_from_hex(text).map_err(|_| {
            SealError::Key("not an Ed25519 public key: give a PEM file or 64 hexadecimal digits".to_owned())
        })
    }
}

/// A signing key from a PKCS#8 PEM file's text (`-----BEGIN PRIVATE KEY-----`).
pub fn signing_key_from_pem(text: &str) -> Result<SigningKey, SealError> {
    SigningKey::from_pkcs8_pem(text)
        .map_err(|err| SealError::Key(format!("not an Ed25519 private key in PKCS#8 PEM: {err}")))
}

/// A key pair's files: the private key as PKCS#8 PEM and the public key as SPKI PEM.
pub fn key_pair_pem(key: &SigningKey) -> Result<(String, String), SealError> {
    let secret = key
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|err| SealError::Key(format!("cannot encode the private key: {err}")))?;
    let public = key
        .verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .map_err(|err| SealError::Key(format!("cannot encode the public key: {err}")))?;
    Ok((secret.to_string(), public))
}

/// The words of the "how to verify" block.
struct Words {
    title: &'static str,
    intro: &'static str,
    unsigned: &'static str,
    position: &'static str,
    head_hash: &'static str,
    figures: &'static str,
    public_key: &'static str,
    signature: &'static str,
    command: &'static str,
}

fn words(language: Language) -> Words {
    match language {
        Language::Vi => Words {
            title: "Kiểm chứng số liệu",
            intro: "Số liệu trong tài liệu này được tính từ nhật ký hồ sơ của tỉnh đến thời điểm chốt số liệu. \
                    Bản cam kết dưới đây ghi vị trí của nhật ký tại thời điểm chốt, mã băm đầu nhật ký tại vị trí đó \
                    và mã băm của số liệu, được ký bằng khóa Ed25519 của tỉnh. Ai có tệp này và một bản sao nhật ký \
                    đều kiểm chứng được chữ ký, nhật ký và từng số liệu, không cần máy chủ:",
            unsigned: "Tài liệu này chưa được ký: máy chủ chưa cấu hình khóa ký ([disclosure] signing_key_file).",
            position: "Vị trí nhật ký (số sự kiện đã tính)",
            head_hash: "Mã băm đầu nhật ký (SHA-256)",
            figures: "Mã băm số liệu (SHA-256)",
            public_key: "Khóa công khai Ed25519 của tỉnh",
            signature: "Chữ ký Ed25519",
            command: "hoso verify-disclosure <tệp> --data-dir <bản sao thư mục dữ liệu> --public-key <khóa công khai của tỉnh>",
        },
        Language::En => Words {
            title: "How to verify these figures",
            intro: "The figures of this document are computed from the province's dossier log as of the cut-off. \
                    The statement below names the log's position at the cut-off, the hash of the log's head there \
                    and the hash of the figures, signed with the province's Ed25519 key. Anyone holding this file \
                    and a copy of the log can check the signature, the log and every figure, without the server:",
            unsigned: "This document is not signed: the server has no signing key ([disclosure] signing_key_file).",
            position: "Log position (events counted)",
            head_hash: "Log head hash (SHA-256)",
            figures: "Figures hash (SHA-256)",
            public_key: "The province's Ed25519 public key",
            signature: "Ed25519 signature",
            command: "hoso verify-disclosure <file> --data-dir <copy of the data directory> --public-key <the province's public key>",
        },
    }
}

fn rows(seal: &Seal, w: &Words) -> [(&'static str, String); 5] {
    let s = &seal.statement;
    [
        (w.position, s.log_position.to_string()),
        (w.head_hash, s.head_hash.clone()),
        (w.figures, s.figures_sha256.clone()),
        (w.public_key, s.public_key.clone()),
        (w.signature, seal.signature.clone()),
    ]
}

fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Adds the "how to verify" section and the seal before the HTML page's `</body>`.
pub(crate) fn seal_html(mut page: String, seal: &Seal, language: Language) -> String {
    let w = words(language);
    let mut block = format!(
        "<section class=\"seal\" id=\"verification\">\n<h2>{}</h2>\n<p>{}</p>\n<p><code>{}</code></p>\n",
        esc(w.title),
        esc(w.intro),
        esc(w.command)
    );
    if seal.signature.is_empty() {
        block.push_str(&format!("<p><strong>{}</strong></p>\n", esc(w.unsigned)));
    }
    block.push_str("<table><tbody>\n");
    for (label, value) in rows(seal, &w) {
        block.push_str(&format!(
            "<tr><th>{}</th><td class=\"code\" style=\"word-break:break-all\">{}</td></tr>\n",
            esc(label),
            esc(&value)
        ));
    }
    block.push_str("</tbody></table>\n");
    // Escaped so that no text of the seal can close the script element.
    let json = seal
        .to_json()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026");
    block.push_str(&format!("{SCRIPT_OPEN}{json}</script>\n</section>\n"));
    let at = page.rfind("</body>").unwrap_or(page.len());
    page.insert_str(at, &block);
    page
}

/// Appends the seal's table to the CSV.
pub(crate) fn seal_csv(mut csv: Vec<u8>, seal: &Seal, language: Language) -> Vec<u8> {
    let w = words(language);
    let mut writer = ::csv::WriterBuilder::new()
        .flexible(true)
        .terminator(::csv::Terminator::CRLF)
        .from_writer(Vec::new());
    let mut lines: Vec<[String; 2]> = vec![
        [w.title.to_owned(), String::new()],
        [w.intro.to_owned(), w.command.to_owned()],
    ];
    if seal.signature.is_empty() {
        lines.push([w.unsigned.to_owned(), String::new()]);
    }
    lines.extend(rows(seal, &w).map(|(label, value)| [label.to_owned(), value]));
    lines.push([SEAL_KEY.to_owned(), seal.to_json()]);
    for line in &lines {
        // Writing to a Vec cannot fail.
        let _ = writer.write_record(line);
    }
    csv.extend_from_slice(b"\r\n");
    csv.extend(writer.into_inner().unwrap_or_default());
    csv
}

/// Adds the seal to the JSON document as its last key.
pub(crate) fn seal_json(mut json: Vec<u8>, seal: &Seal) -> Vec<u8> {
    // The document is pretty-printed and ends with "\n}\n": the seal goes before the last brace.
    if json.ends_with(b"\n}\n") {
        json.truncate(json.len() - 3);
        json.extend_from_slice(b",\n  \"seal\": ");
        json.extend_from_slice(seal.to_json().as_bytes());
        json.extend_from_slice(b"\n}\n");
    }
    json
}

/// The XLSX workbook's last sheet: the "how to verify" text and the seal.
pub(crate) fn seal_sheet(seal: &Seal, language: Language) -> Result<rust_xlsxwriter::Worksheet, DisclosureError> {
    use rust_xlsxwriter::{Format as CellFormat, Worksheet};
    let xlsx = |err: rust_xlsxwriter::XlsxError| DisclosureError::Xlsx(err.to_string());
    let w = words(language);
    let mut ws = Worksheet::new();
    ws.set_name(match language {
        Language::Vi => "Kiểm chứng",
        Language::En => "Verification",
    })
    .map_err(xlsx)?;
    ws.set_column_width(0, 40).map_err(xlsx)?;
    ws.set_column_width(1, 80).map_err(xlsx)?;
    let bold = CellFormat::new().set_bold();
    let wrap = CellFormat::new().set_text_wrap();
    ws.write_string_with_format(0, 0, w.title, &bold).map_err(xlsx)?;
    ws.write_string_with_format(1, 0, w.intro, &wrap).map_err(xlsx)?;
    ws.write_string(2, 0, w.command).map_err(xlsx)?;
    let mut row = 3;
    if seal.signature.is_empty() {
        ws.write_string_with_format(row, 0, w.unsigned, &bold).map_err(xlsx)?;
        row += 1;
    }
    for (label, value) in rows(seal, &w) {
        ws.write_string(row, 0, label).map_err(xlsx)?;
        ws.write_string(row, 1, &value).map_err(xlsx)?;
        row += 1;
    }
    let json = seal.to_json();
    let mut rest = json.as_str();
    while !rest.is_empty() {
        let mut cut = rest.len().min(XLSX_PIECE);
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        ws.write_string(row, 0, SEAL_KEY).map_err(xlsx)?;
        ws.write_string(row, 1, &rest[..cut]).map_err(xlsx)?;
        rest = &rest[cut..];
        row += 1;
    }
    Ok(ws)
}
