//! Reading gallery format versions 1 and 2: a bincode 2 payload (serde, standard config).
//!
//! bincode is unmaintained (RUSTSEC-2025-0141; 3.0.0 is a deliberate `compile_error!`), so it
//! is pinned to `=2.0.1` and used here only, to read galleries written before version 3.
//! `facerec-model upgrade` rewrites them as version 3. To drop old galleries in a later
//! release, delete this file, its `mod` line and its one call in `Gallery::from_bytes`, and
//! bincode from the workspace.
//!
//! | version | payload |
//! |---|---|
//! | 1 | [`GalleryHeader`] then the people |
//! | 2 | the same, then the rejects |
//!
//! Both are followed by the sha256 of the payload alone (the preamble is not covered).

use super::{GalleryError, GalleryHeader, MAX_GALLERY_BYTES, Person};

/// Format version 1: header and people.
pub const VERSION_PEOPLE: u32 = 1;
/// Format version 2: header, people and rejects.
pub const VERSION_REJECTS: u32 = 2;

type PayloadV1 = (GalleryHeader, Vec<Person>);
type PayloadV2 = (GalleryHeader, Vec<Person>, Vec<Person>);

/// Decodes a version 1 or 2 payload (whose checksum the caller has checked): the header, the
/// people and the rejects (none in version 1).
pub(super) fn decode(
    version: u32,
    payload: &[u8],
) -> Result<(GalleryHeader, Vec<Person>, Vec<Person>), GalleryError> {
    let (decoded, used) = if version == VERSION_PEOPLE {
        let ((header, people), used) = decode_payload::<PayloadV1>(payload)?;
        ((header, people, Vec::new()), used)
    } else {
        decode_payload::<PayloadV2>(payload)?
    };
    if used != payload.len() {
        return Err(GalleryError::Corrupt(format!(
            "{} unread payload bytes",
            payload.len() - used
        )));
    }
    Ok(decoded)
}

/// Decodes the bincode payload with a byte limit, so that no length field can make the decoder
/// allocate more than the payload could hold. bincode counts every string and byte container it
/// is about to allocate against the limit and refuses before allocating; sequences go through
/// serde, which caps its pre-allocation and grows only as elements really decode. The limit is
/// a type parameter, so it is the smallest of a few powers of four at or above the payload size:
/// at most four times the payload (at least 4 KiB) and never more than `MAX_GALLERY_BYTES`.
fn decode_payload<T: serde::de::DeserializeOwned>(
    payload: &[u8],
) -> Result<(T, usize), GalleryError> {
    use bincode::config::standard;
    fn with<T: serde::de::DeserializeOwned, const N: usize>(
        payload: &[u8],
    ) -> Result<(T, usize), bincode::error::DecodeError> {
        bincode::serde::decode_from_slice(payload, standard().with_limit::<N>())
    }
    const MAX: usize = MAX_GALLERY_BYTES as usize;
    let result = match payload.len() {
        n if n <= 1 << 12 => with::<T, { 1 << 12 }>(payload),
        n if n <= 1 << 14 => with::<T, { 1 << 14 }>(payload),
        n if n <= 1 << 16 => with::<T, { 1 << 16 }>(payload),
        n if n <= 1 << 18 => with::<T, { 1 << 18 }>(payload),
        n if n <= 1 << 20 => with::<T, { 1 << 20 }>(payload),
        n if n <= 1 << 22 => with::<T, { 1 << 22 }>(payload),
        n if n <= 1 << 24 => with::<T, { 1 << 24 }>(payload),
        _ => with::<T, MAX>(payload),
    };
    result.map_err(|e| match e {
        bincode::error::DecodeError::LimitExceeded => GalleryError::LengthBeyondPayload {
            payload: payload.len(),
        },
        // A length that fits the limit but not the bytes left ends here, after a bounded
        // allocation.
        bincode::error::DecodeError::UnexpectedEnd { .. } => {
            GalleryError::Corrupt("the payload ends in the middle of a field".into())
        }
        other => GalleryError::Corrupt(other.to_string()),
    })
}

/// A whole version 1 file (no rejects) or version 2 file (with rejects), as the builds before
/// version 3 wrote them: for the tests of reading them. Production code never writes these.
#[cfg(test)]
pub(super) fn encode(g: &super::Gallery) -> Vec<u8> {
    let config = bincode::config::standard();
    let (version, payload) = if g.rejects.is_empty() {
        (
            VERSION_PEOPLE,
            bincode::serde::encode_to_vec((&g.header, &g.people), config),
        )
    } else {
        (
            VERSION_REJECTS,
            bincode::serde::encode_to_vec((&g.header, &g.people, &g.rejects), config),
        )
    };
    super::envelope(version, &payload.expect("plain data encodes"))
}
