//! The partition function. Its algorithm is fixed forever: changing it would split a live
//! conversation across two partitions (two writers, lost ordering) during a deploy. SHA-256 is
//! specified by a standard and identical on every platform and release, unlike `std`'s
//! `DefaultHasher`, which is explicitly allowed to change.

use sha2::{Digest, Sha256};

/// The partition of a conversation key among `partitions` partitions.
pub fn partition_of(conversation_key: &str, partitions: u16) -> u16 {
    let digest = Sha256::digest(conversation_key.as_bytes());
    let mut first8 = [0u8; 8];
    first8.copy_from_slice(&digest[..8]);
    (u64::from_be_bytes(first8) % u64::from(partitions.max(1))) as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pinned vectors (cross-checked with Python's hashlib: first 8 bytes of SHA-256, big
    /// endian, mod P). If this test fails, the partition function changed and every deployed
    /// fleet would route live conversations to new partitions. Do not "fix" the numbers.
    #[test]
    fn pinned_partitions_never_change() {
        let cases = [
            ("106540352242922|16505551234", 16, 13),
            ("106540352242922|16505551234", 64, 13),
            ("123456123|US.13491208655302741918", 16, 2),
            ("15550001111|34600111222", 16, 3),
            ("", 16, 4),
        ];
        for (key, partitions, expected) in cases {
            assert_eq!(
                partition_of(key, partitions),
                expected,
                "key {key:?} P={partitions}"
            );
        }
    }

    #[test]
    fn spreads_keys_over_all_partitions() {
        let mut counts = [0u32; 16];
        for i in 0..16_000 {
            counts[partition_of(&format!("1|{}", 34_600_000_000u64 + i), 16) as usize] += 1;
        }
        for count in counts {
            assert!((800..1200).contains(&count), "uneven spread: {counts:?}");
        }
    }
}
