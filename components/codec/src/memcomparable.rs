//! Memcomparable ("ascending bytes") encoding, as TiKV and PD use for region boundaries.
//!
//! The key is cut into 8-byte groups. Each group is written padded with `0x00` to 8 bytes and
//! followed by a marker byte `0xFF - padding`. A final group is always written, so a key whose
//! length is a multiple of 8 ends with eight zero bytes and the marker `0xF7`. The encoding
//! preserves order: `a < b` if and only if `encode(a) < encode(b)`.

use crate::Error;

const GROUP_SIZE: usize = 8;
const MARKER: u8 = 0xFF;
const PAD: u8 = 0x00;

/// Returns the length of `encode(key)`.
pub fn encoded_len(key: &[u8]) -> usize {
    (key.len() / GROUP_SIZE + 1) * (GROUP_SIZE + 1)
}

/// Encodes `key` in memcomparable form.
pub fn encode(key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(encoded_len(key));
    encode_into(key, &mut out);
    out
}

/// Appends `encode(key)` to `out`.
pub fn encode_into(key: &[u8], out: &mut Vec<u8>) {
    let mut groups = key.chunks_exact(GROUP_SIZE);
    for group in &mut groups {
        out.extend_from_slice(group);
        out.push(MARKER);
    }
    let rest = groups.remainder();
    let padding = GROUP_SIZE - rest.len();
    out.extend_from_slice(rest);
    out.extend(std::iter::repeat_n(PAD, padding));
    out.push(MARKER - padding as u8);
}

/// Decodes one memcomparable byte string from the front of `encoded`.
///
/// Returns the key and the number of bytes consumed, so that callers can decode keys followed by
/// other data (for example a timestamp suffix).
///
/// # Errors
///
/// [`Error::UnexpectedEof`] if the input stops inside a group, [`Error::InvalidPadding`] if a
/// marker or its padding bytes are not what the encoder writes.
pub fn decode_prefix(encoded: &[u8]) -> Result<(Vec<u8>, usize), Error> {
    let mut key = Vec::with_capacity(encoded.len() / (GROUP_SIZE + 1) * GROUP_SIZE);
    let mut offset = 0;
    loop {
        let group = encoded
            .get(offset..offset + GROUP_SIZE + 1)
            .ok_or(Error::UnexpectedEof)?;
        offset += GROUP_SIZE + 1;
        let marker = group[GROUP_SIZE];
        let padding = usize::from(MARKER - marker);
        if padding == 0 {
            key.extend_from_slice(&group[..GROUP_SIZE]);
            continue;
        }
        if padding > GROUP_SIZE {
            return Err(Error::InvalidPadding { offset });
        }
        let (data, pad) = group[..GROUP_SIZE].split_at(GROUP_SIZE - padding);
        if pad.iter().any(|&b| b != PAD) {
            return Err(Error::InvalidPadding { offset });
        }
        key.extend_from_slice(data);
        return Ok((key, offset));
    }
}

/// Decodes a whole memcomparable byte string.
///
/// # Errors
///
/// As [`decode_prefix`], plus [`Error::InvalidPadding`] if bytes follow the final group.
pub fn decode(encoded: &[u8]) -> Result<Vec<u8>, Error> {
    let (key, used) = decode_prefix(encoded)?;
    if used != encoded.len() {
        return Err(Error::InvalidPadding { offset: used });
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_encodings() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"", &[0, 0, 0, 0, 0, 0, 0, 0, 0xF7]),
            (b"r\0\0\0", &[0x72, 0, 0, 0, 0, 0, 0, 0, 0xFB]),
            (b"x\0\0\x01", &[0x78, 0, 0, 1, 0, 0, 0, 0, 0xFB]),
            (b"x\0\0\0foo", &[0x78, 0, 0, 0, 0x66, 0x6F, 0x6F, 0, 0xFE]),
            (
                b"12345678",
                &[
                    b'1', b'2', b'3', b'4', b'5', b'6', b'7', b'8', 0xFF, 0, 0, 0, 0, 0, 0, 0, 0,
                    0xF7,
                ],
            ),
        ];
        for (key, encoded) in cases {
            assert_eq!(encode(key), *encoded, "encode {key:?}");
            assert_eq!(encoded_len(key), encoded.len());
            assert_eq!(decode(encoded).unwrap(), *key, "decode {encoded:?}");
        }
    }

    #[test]
    fn order_is_preserved() {
        let mut keys: Vec<Vec<u8>> = vec![
            b"".to_vec(),
            b"\0".to_vec(),
            b"a".to_vec(),
            b"a\0".to_vec(),
            b"abcdefgh".to_vec(),
            b"abcdefgh\0".to_vec(),
            b"abcdefghi".to_vec(),
            b"b".to_vec(),
            vec![0xFF; 9],
        ];
        keys.sort();
        let encoded: Vec<_> = keys.iter().map(|k| encode(k)).collect();
        let mut sorted = encoded.clone();
        sorted.sort();
        assert_eq!(encoded, sorted);
    }

    #[test]
    fn malformed_input_is_an_error() {
        assert_eq!(decode(&[0x72, 0, 0]), Err(Error::UnexpectedEof));
        assert_eq!(
            decode(&[1, 2, 3, 4, 5, 6, 7, 8, 0xFF]),
            Err(Error::UnexpectedEof)
        );
        // Padding bytes must be zero.
        assert!(matches!(
            decode(&[0x72, 0, 0, 0, 0, 0, 0, 1, 0xFB]),
            Err(Error::InvalidPadding { .. })
        ));
        // A marker claiming more than 8 bytes of padding.
        assert!(matches!(
            decode(&[0, 0, 0, 0, 0, 0, 0, 0, 0x10]),
            Err(Error::InvalidPadding { .. })
        ));
        // Trailing bytes after the final group.
        assert!(matches!(
            decode(&[0, 0, 0, 0, 0, 0, 0, 0, 0xF7, 1]),
            Err(Error::InvalidPadding { .. })
        ));
    }

    #[test]
    fn decode_prefix_reports_consumed_length() {
        let mut buf = encode(b"key");
        buf.extend_from_slice(&[9, 9]);
        assert_eq!(decode_prefix(&buf).unwrap(), (b"key".to_vec(), 9));
    }
}
