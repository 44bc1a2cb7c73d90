//! Near-duplicate changes: a MinHash signature of a commit's added lines, and
//! the Jaccard similarity two signatures estimate.
//!
//! The shingles are the added lines, each normalised (whitespace collapsed,
//! trimmed); lines with fewer than [`MIN_SHINGLE_CHARS`] characters (`}`,
//! `end`, blank) say nothing about a change and are left out. Lines are a
//! set, so reordered hunks keep their signature; a one-character edit of an
//! N-line patch changes one shingle: similarity (N − 1) / (N + 1).

use sha2::{Digest, Sha256};

/// Hashes in a signature (the estimate's standard error is about 1/√64 = 0.125
/// at similarity 0.5, and far smaller near 0 and 1).
pub const HASHES: usize = 64;

/// Normalised lines shorter than this are not shingles.
pub const MIN_SHINGLE_CHARS: usize = 4;

/// A MinHash signature: for each of [`HASHES`] hash functions, the least hash
/// of any shingle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature(pub [u32; HASHES]);

/// The odd multipliers and offsets of the hash functions (fixed: signatures
/// are stored and compared across versions).
fn functions() -> impl Iterator<Item = (u64, u64)> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        // splitmix64
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    (0..HASHES).map(move |_| (next() | 1, next()))
}

/// A line with whitespace runs collapsed to one space and trimmed.
pub fn normalise(line: &str) -> String {
    line.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The signature of a change's added lines, or `None` when no line is long
/// enough to be a shingle.
pub fn signature<'a>(added_lines: impl IntoIterator<Item = &'a str>) -> Option<Signature> {
    let mut shingles: Vec<u64> = added_lines
        .into_iter()
        .map(normalise)
        .filter(|l| l.chars().count() >= MIN_SHINGLE_CHARS)
        .map(|l| {
            let digest = Sha256::digest(l.as_bytes());
            u64::from_le_bytes(digest[..8].try_into().expect("8 bytes"))
        })
        .collect();
    if shingles.is_empty() {
        return None;
    }
    shingles.sort_unstable();
    shingles.dedup();
    let mut mins = [u32::MAX; HASHES];
    for (slot, (a, b)) in mins.iter_mut().zip(functions()) {
        for x in &shingles {
            let h = (x.wrapping_mul(a).wrapping_add(b) >> 32) as u32;
            *slot = (*slot).min(h);
        }
    }
    Some(Signature(mins))
}

impl Signature {
    /// The estimated Jaccard similarity: the share of hash functions whose
    /// minimum agrees.
    pub fn similarity(&self, other: &Signature) -> f64 {
        let same = self.0.iter().zip(&other.0).filter(|(a, b)| a == b).count();
        same as f64 / HASHES as f64
    }

    /// Hex, 8 digits per hash (as stored).
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|h| format!("{h:08x}")).collect()
    }

    pub fn from_hex(text: &str) -> Option<Signature> {
        if text.len() != HASHES * 8 || !text.is_ascii() {
            return None;
        }
        let mut mins = [0u32; HASHES];
        for (i, slot) in mins.iter_mut().enumerate() {
            *slot = u32::from_str_radix(&text[i * 8..i * 8 + 8], 16).ok()?;
        }
        Some(Signature(mins))
    }

    /// Locality-sensitive buckets: 16 bands of 4 hashes. Two signatures that
    /// share a band are candidates; at similarity 0.8 they share one with
    /// probability 1 − (1 − 0.8⁴)¹⁶ > 0.9999, at 0.3 with 0.12.
    pub fn bands(&self) -> impl Iterator<Item = (u8, u64)> + '_ {
        self.0.chunks(4).enumerate().map(|(band, rows)| {
            let key = rows.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, r| {
                (h ^ u64::from(*r)).wrapping_mul(0x0100_0000_01b3)
            });
            (band as u8, key)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(prefix: &str, n: usize) -> Vec<String> {
        (0..n)
            .map(|i| format!("    let {prefix}_{i} = compute({i}, \"{prefix}\");"))
            .collect()
    }

    fn sig(lines: &[String]) -> Signature {
        signature(lines.iter().map(String::as_str)).unwrap()
    }

    #[test]
    fn a_one_character_edit_is_a_near_duplicate() {
        let patch = lines("fix", 40);
        let mut edited = patch.clone();
        edited[17] = edited[17].replace("compute", "computE");
        // True Jaccard 39/41 = 0.951.
        assert!(sig(&patch).similarity(&sig(&edited)) >= 0.8);
        assert_eq!(sig(&patch).similarity(&sig(&patch)), 1.0);
    }

    #[test]
    fn reordered_and_reindented_lines_keep_their_signature() {
        let patch = lines("fix", 30);
        let mut reordered: Vec<String> = patch[15..].to_vec();
        reordered.extend_from_slice(&patch[..15]);
        let reindented: Vec<String> = reordered.iter().map(|l| format!("\t{}  ", l)).collect();
        assert_eq!(sig(&patch), sig(&reindented));
    }

    #[test]
    fn different_fixes_in_one_file_are_not_duplicates() {
        let mut a = lines("parse", 20);
        let mut b = lines("render", 20);
        // Shared boilerplate too short to be a shingle, and one shared line.
        for x in [&mut a, &mut b] {
            x.push("}".into());
            x.push("    return Ok(result);".into());
        }
        // True Jaccard 1/41.
        assert!(sig(&a).similarity(&sig(&b)) < 0.3);
    }

    #[test]
    fn bands_find_the_near_duplicate_and_hex_round_trips() {
        let patch = lines("fix", 40);
        let mut edited = patch.clone();
        edited[3].push('x');
        let (x, y) = (sig(&patch), sig(&edited));
        assert!(x.bands().zip(y.bands()).any(|(p, q)| p == q));
        assert_eq!(Signature::from_hex(&x.to_hex()), Some(x.clone()));
        assert_eq!(x.to_hex().len(), 512);
        assert_eq!(Signature::from_hex("zz"), None);
        assert_eq!(signature(["}", "  ", "end"]), None);
    }
}
