//! The projection snapshot decoder: any bytes are refused with a reason or decoded; a decoded
//! model encodes to bytes that decode to a model encoding to the same bytes again.
//!
//! Random bytes rarely pass the header's CRC, so each input is tried twice: as it is, and as a
//! payload wrapped in a header with the right length and CRC and this store's id, which takes
//! it to the payload decoder.

use hoso_projections::Dossiers;
use hoso_projections::snapshot::{MAGIC, VERSION};

/// The store id every snapshot of this target is offered to.
pub(crate) const STORE_ID: uuid::Uuid = uuid::Uuid::from_u128(0x686f_736f_2d66_757a_7a2d_736e_6170_7368);

/// `payload` with a valid header, its first 16 bytes replaced by [`STORE_ID`].
pub(crate) fn wrap(payload: &[u8]) -> Vec<u8> {
    let mut payload = payload.to_vec();
    let id_len = payload.len().min(16);
    payload[..id_len].copy_from_slice(&STORE_ID.as_bytes()[..id_len]);
    let mut out = Vec::with_capacity(24 + payload.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    out.extend_from_slice(&payload);
    out
}

fn decode(bytes: &[u8]) -> Result<String, String> {
    let model = match Dossiers::decode_snapshot(bytes, STORE_ID) {
        Err(err) => {
            let text = err.to_string();
            if text.is_empty() {
                return Err("a snapshot was refused with an empty reason".to_owned());
            }
            // The reason's kind, without its numbers, is the outcome.
            let kind: String = text
                .chars()
                .filter(|c| c.is_alphabetic() || *c == ' ')
                .take(64)
                .collect();
            return Ok(format!("refused:{kind}"));
        }
        Ok(model) => model,
    };
    let encoded = model.encode_snapshot(STORE_ID);
    let again = Dossiers::decode_snapshot(&encoded, STORE_ID)
        .map_err(|err| format!("a decoded snapshot, encoded again, does not decode: {err}"))?;
    if again.checkpoint() != model.checkpoint() || again.checkpoint_hash() != model.checkpoint_hash() {
        return Err("a snapshot's checkpoint changed through encode and decode".to_owned());
    }
    if again.encode_snapshot(STORE_ID) != encoded {
        return Err("a decoded snapshot encodes to other bytes after a round trip".to_owned());
    }
    Ok(format!("decoded:{}", model.histories().len().min(4)))
}

pub(super) fn run(data: &[u8]) -> Result<String, String> {
    let raw = decode(data)?;
    let wrapped = decode(&wrap(data))?;
    Ok(format!("{raw}/{wrapped}"))
}
