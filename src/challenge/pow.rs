//! The proof of work: find a decimal `answer` such that
//! SHA-256(nonce ‖ answer) starts with `difficulty` zero bits. The page's
//! script does the search (about 2^difficulty hashes); checking costs one.

use sha2::{Digest, Sha256};

/// The longest answer accepted (a u64 in decimal).
const MAX_ANSWER: usize = 20;

fn leading_zero_bits(hash: &[u8]) -> u32 {
    let mut bits = 0;
    for &b in hash {
        if b == 0 {
            bits += 8;
        } else {
            return bits + b.leading_zeros();
        }
    }
    bits
}

/// Whether `answer` solves the nonce at this difficulty.
pub fn solves(nonce: &[u8], answer: &[u8], difficulty: u8) -> bool {
    if answer.is_empty() || answer.len() > MAX_ANSWER || !answer.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let hash = Sha256::new()
        .chain_update(nonce)
        .chain_update(answer)
        .finalize();
    leading_zero_bits(&hash) >= u32::from(difficulty)
}

/// The first answer, as the page's script finds it (for tests and benches).
pub fn solve(nonce: &[u8], difficulty: u8) -> u64 {
    (0u64..)
        .find(|i| solves(nonce, i.to_string().as_bytes(), difficulty))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_bits_are_counted() {
        assert_eq!(leading_zero_bits(&[0, 0, 0x10, 0xff]), 19);
        assert_eq!(leading_zero_bits(&[0x80]), 0);
        assert_eq!(leading_zero_bits(&[0, 0]), 16);
    }

    #[test]
    fn a_solution_is_checked_once() {
        let nonce = b"18c0a1b2c3d.00112233445566778899aabbccddeeff";
        let a = solve(nonce, 12).to_string();
        assert!(solves(nonce, a.as_bytes(), 12));
        let hash = Sha256::digest([&nonce[..], a.as_bytes()].concat());
        assert!(leading_zero_bits(&hash) >= 12);
        assert!(solves(nonce, a.as_bytes(), 1), "an easier difficulty too");
        for junk in [&b""[..], b"-1", b"1e3", b" 1", b"123456789012345678901"] {
            assert!(!solves(nonce, junk, 1), "{junk:?}");
        }
    }
}
