//! The number and byte-string encodings inside lock and write values, as TiKV writes them:
//! varints (LEB128), zigzag varints, "compact bytes" (a zigzag varint length, then the bytes)
//! and fixed 8-byte big-endian integers. A decoder takes `&mut &[u8]` and advances it.

/// Appends `value` as a LEB128 varint.
pub fn encode_var_u64(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push(value as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Reads a LEB128 varint; `None` when the input ends early or the varint is over 10 bytes.
pub fn decode_var_u64(data: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for (i, &byte) in data.iter().enumerate().take(10) {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            *data = &data[i + 1..];
            return Some(value);
        }
    }
    None
}

/// Appends a byte string as its zigzag-varint length followed by the bytes.
pub fn encode_compact_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    let len = bytes.len() as i64;
    encode_var_u64(out, ((len << 1) ^ (len >> 63)) as u64);
    out.extend_from_slice(bytes);
}

/// Reads a byte string written by [`encode_compact_bytes`].
pub fn decode_compact_bytes(data: &mut &[u8]) -> Option<Vec<u8>> {
    let zigzag = decode_var_u64(data)?;
    let len = ((zigzag >> 1) as i64) ^ -((zigzag & 1) as i64);
    let len = usize::try_from(len).ok()?;
    let bytes = data.get(..len)?.to_vec();
    *data = &data[len..];
    Some(bytes)
}

/// Reads a big-endian u64.
pub fn decode_u64(data: &mut &[u8]) -> Option<u64> {
    let bytes: [u8; 8] = data.get(..8)?.try_into().ok()?;
    *data = &data[8..];
    Some(u64::from_be_bytes(bytes))
}

/// Reads one byte.
pub fn decode_u8(data: &mut &[u8]) -> Option<u8> {
    let (&first, rest) = data.split_first()?;
    *data = rest;
    Some(first)
}

/// Reads a short value: a one-byte length and that many bytes.
pub fn decode_short_value(data: &mut &[u8]) -> Option<Vec<u8>> {
    let len = usize::from(decode_u8(data)?);
    let value = data.get(..len)?.to_vec();
    *data = &data[len..];
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_and_match_leb128() {
        for value in [0u64, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
            let mut out = vec![];
            encode_var_u64(&mut out, value);
            let mut slice = out.as_slice();
            assert_eq!(decode_var_u64(&mut slice), Some(value));
            assert!(slice.is_empty());
        }
        let mut out = vec![];
        encode_var_u64(&mut out, 300);
        assert_eq!(out, [0xac, 0x02]);
        assert_eq!(decode_var_u64(&mut &[0x80u8][..]), None);
    }

    #[test]
    fn compact_bytes_round_trip() {
        let mut out = vec![];
        encode_compact_bytes(&mut out, b"primary");
        // Length 7 zigzag-encoded is 14.
        assert_eq!(out[0], 14);
        let mut slice = out.as_slice();
        assert_eq!(decode_compact_bytes(&mut slice).unwrap(), b"primary");
        assert!(slice.is_empty());
        assert_eq!(decode_compact_bytes(&mut &[14u8, b'a'][..]), None);
    }
}
