//! Secrets kept only as SHA-256 digests and matched in constant time, so neither a memory
//! dump nor response timing reveals a configured key.

use sha2::{Digest, Sha256};
use subtle::{Choice, ConditionallySelectable, ConstantTimeEq};

/// The SHA-256 digest of one secret.
pub(crate) type SecretDigest = [u8; 32];

/// Hashes a secret as presented or configured.
pub fn sha256(secret: &str) -> SecretDigest {
    Sha256::digest(secret.as_bytes()).into()
}

/// Parses a configured hex digest (either case); `None` when it is not 64 hex characters.
pub(crate) fn parse_hex_digest(hex_digest: &str) -> Option<SecretDigest> {
    let bytes = hex::decode(hex_digest.trim()).ok()?;
    bytes.try_into().ok()
}

/// The position of `presented` among `digests`, found by comparing against every entry so
/// the time taken does not depend on which entry (if any) matched.
pub fn find(digests: &[SecretDigest], presented: &str) -> Option<usize> {
    let presented = sha256(presented);
    let mut found = Choice::from(0);
    let mut position = 0u64;
    for (index, digest) in (0u64..).zip(digests) {
        let matches = digest.ct_eq(&presented);
        // A branch-free select, so no iteration takes longer because it matched.
        position = u64::conditional_select(&position, &index, matches);
        found |= matches;
    }
    bool::from(found)
        .then(|| usize::try_from(position).ok())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_matching_secret_among_several() {
        let digests = [sha256("alpha"), sha256("beta"), sha256("gamma")];
        assert_eq!(find(&digests, "beta"), Some(1));
        assert_eq!(find(&digests, "gamma"), Some(2));
        assert_eq!(find(&digests, "alpha"), Some(0));
    }

    #[test]
    fn an_unknown_or_prefix_secret_matches_nothing() {
        let digests = [sha256("alpha")];
        assert_eq!(find(&digests, "alph"), None);
        assert_eq!(find(&digests, "alphaa"), None);
        assert_eq!(find(&digests, ""), None);
        assert_eq!(find(&[], "alpha"), None);
    }

    #[test]
    fn a_digest_from_sha256sum_matches_the_key() {
        // What operators get from `printf %s kg-test | sha256sum`.
        let configured = "18b3dd51abc9f5e4432b66507bb80282e7691bd14ee6a7b5a97cbb047079a0de";
        assert_eq!(parse_hex_digest(configured), Some(sha256("kg-test")));
        assert_eq!(
            parse_hex_digest(&configured.to_uppercase()),
            Some(sha256("kg-test"))
        );
    }

    #[test]
    fn malformed_hex_digests_are_refused() {
        assert_eq!(parse_hex_digest("abc"), None);
        assert_eq!(parse_hex_digest(&"zz".repeat(32)), None);
        assert_eq!(parse_hex_digest(&"ab".repeat(33)), None);
    }
}
