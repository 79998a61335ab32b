//! `X-Hub-Signature-256` verification: HMAC-SHA256 of the exact raw body with the app secret,
//! compared in constant time before anything is parsed.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("X-Hub-Signature-256 header is missing")]
    Missing,
    #[error("X-Hub-Signature-256 header is not sha256=<64 hex digits>")]
    Malformed,
    #[error("X-Hub-Signature-256 does not match the body")]
    Mismatch,
}

pub fn verify(app_secret: &[u8], header: Option<&[u8]>, body: &[u8]) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let hex_digest = header
        .strip_prefix(b"sha256=")
        .ok_or(SignatureError::Malformed)?;
    if hex_digest.len() != 64 {
        return Err(SignatureError::Malformed);
    }
    let mut presented = [0u8; 32];
    hex::decode_to_slice(hex_digest, &mut presented).map_err(|_| SignatureError::Malformed)?;
    let expected = sign(app_secret, body);
    if bool::from(expected.ct_eq(&presented)) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// The HMAC the sender computes; also used by tests and the load generator to sign.
pub fn sign(app_secret: &[u8], body: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(app_secret)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(body);
    mac.finalize().into_bytes().into()
}

/// The header value for a body: `sha256=<lowercase hex>`.
pub fn header_value(app_secret: &[u8], body: &[u8]) -> String {
    format!("sha256={}", hex::encode(sign(app_secret, body)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_own_signature_and_rejects_others() {
        let body = br#"{"object":"whatsapp_business_account"}"#;
        let header = header_value(b"secret", body);
        assert_eq!(verify(b"secret", Some(header.as_bytes()), body), Ok(()));
        assert_eq!(
            verify(b"other", Some(header.as_bytes()), body),
            Err(SignatureError::Mismatch)
        );
        let mut tampered = body.to_vec();
        tampered.push(b' ');
        assert_eq!(
            verify(b"secret", Some(header.as_bytes()), &tampered),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn rejects_malformed_headers() {
        let body = b"{}";
        assert_eq!(verify(b"s", None, body), Err(SignatureError::Missing));
        for bad in [
            "",
            "sha256=",
            "sha1=abcd",
            "sha256=zz",
            &format!("sha256={}", "g".repeat(64)),
        ] {
            assert_eq!(
                verify(b"s", Some(bad.as_bytes()), body),
                Err(SignatureError::Malformed),
                "{bad}"
            );
        }
        // Uppercase hex is still the same digest.
        let upper = header_value(b"s", body)
            .to_uppercase()
            .replace("SHA256=", "sha256=");
        assert_eq!(verify(b"s", Some(upper.as_bytes()), body), Ok(()));
    }
}
