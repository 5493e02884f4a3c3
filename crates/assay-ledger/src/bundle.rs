//! Entry bundles (C2SP tlog-tiles): each entry as a big-endian 16-bit length and its bytes.

/// Splits a bundle into its entries, or says where it is broken.
pub fn parse(bytes: &[u8]) -> Result<Vec<&[u8]>, String> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let Some((len, tail)) = rest.split_first_chunk::<2>() else {
            return Err(format!("truncated: entry {} has half a length prefix", out.len()));
        };
        let len = u16::from_be_bytes(*len) as usize;
        if tail.len() < len {
            return Err(format!("truncated: entry {} says {len} bytes but {} are left", out.len(), tail.len()));
        }
        out.push(&tail[..len]);
        rest = &tail[len..];
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tiles::bundle_bytes;

    #[test]
    fn bundles_round_trip_and_truncation_is_named() {
        let entries: Vec<&[u8]> = vec![b"one", b"", b"three"];
        let bytes = bundle_bytes(&entries);
        assert_eq!(parse(&bytes), Ok(entries));
        assert_eq!(parse(&bytes[..bytes.len() - 1]), Err("truncated: entry 2 says 5 bytes but 4 are left".into()));
        assert_eq!(parse(&bytes[..6]), Err("truncated: entry 1 has half a length prefix".into()));
    }
}
