//! `X-Hub-Signature-256` verification: HMAC-SHA256 of the raw body, compared in constant time.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::secret::Secret;

type HmacSha256 = Hmac<Sha256>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error(
        "missing X-Hub-Signature-256 header (an X-Hub-Signature sha1 signature alone is not accepted)"
    )]
    Missing,
    #[error("X-Hub-Signature-256 is not of the form sha256=<64 hex digits>")]
    Malformed,
    #[error("X-Hub-Signature-256 does not match the body for any configured webhook secret")]
    Mismatch,
}

/// Checks `header` (the `X-Hub-Signature-256` value) against every secret.
pub fn verify(header: Option<&str>, body: &[u8], secrets: &[Secret]) -> Result<(), SignatureError> {
    let expected = digest(header)?;
    // Check every secret, so the time taken does not tell which one matched.
    let mut matched = false;
    for secret in secrets {
        let mut mac = HmacSha256::new_from_slice(secret.expose().as_bytes())
            .expect("HMAC accepts keys of any length");
        mac.update(body);
        matched |= mac.verify_slice(&expected).is_ok();
    }
    if matched {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// Checks the header's form before the body is read, so a request that cannot
/// be signed is refused without costing its body's memory.
pub fn precheck(header: Option<&str>) -> Result<(), SignatureError> {
    digest(header).map(|_| ())
}

/// The 32 bytes of `sha256=<64 hex digits>`.
fn digest(header: Option<&str>) -> Result<Vec<u8>, SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let hex_digest = header
        .trim()
        .strip_prefix("sha256=")
        .ok_or(SignatureError::Malformed)?;
    let expected = hex::decode(hex_digest).map_err(|_| SignatureError::Malformed)?;
    if expected.len() != 32 {
        return Err(SignatureError::Malformed);
    }
    Ok(expected)
}

/// The `X-Hub-Signature-256` value GitHub would send for `body` signed with `secret`.
pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac =
        HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC accepts keys of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets(list: &[&str]) -> Vec<Secret> {
        list.iter().map(|s| Secret::new(*s)).collect()
    }

    #[test]
    fn github_documented_example() {
        // The example from GitHub's "Validating webhook deliveries" documentation.
        let header = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert_eq!(sign("It's a Secret to Everybody", b"Hello, World!"), header);
        assert_eq!(
            verify(
                Some(header),
                b"Hello, World!",
                &secrets(&["It's a Secret to Everybody"])
            ),
            Ok(())
        );
    }

    #[test]
    fn any_configured_secret_is_accepted() {
        let body = b"{}";
        let header = sign("old", body);
        assert_eq!(
            verify(Some(&header), body, &secrets(&["new", "old"])),
            Ok(())
        );
        assert_eq!(
            verify(Some(&header), body, &secrets(&["new"])),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn rejects_missing_malformed_and_tampered() {
        let s = secrets(&["k"]);
        assert_eq!(verify(None, b"{}", &s), Err(SignatureError::Missing));
        assert_eq!(
            verify(
                Some("sha1=0123456789abcdef0123456789abcdef01234567"),
                b"{}",
                &s
            ),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify(Some("sha256=zz"), b"{}", &s),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify(Some("sha256=abcd"), b"{}", &s),
            Err(SignatureError::Malformed)
        );
        let header = sign("k", b"{}");
        assert_eq!(
            verify(Some(&header), b"{ }", &s),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(Some(&header), b"{}", &[]),
            Err(SignatureError::Mismatch)
        );
    }
}
