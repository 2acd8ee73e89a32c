//! Deterministic train/dev splits by a hash of each example's user text.
//!
//! The hash is 64-bit FNV-1a over the UTF-8 bytes of the user messages joined by newlines,
//! followed by the MurmurHash3 64-bit finalizer, so the split depends only on the text: the
//! same input gives the same split on every machine and in every run, and duplicate questions
//! land in the same split. The finalizer matters because the last bytes of FNV-1a barely
//! reach its top bits: texts that differ only at the end (`question 1`, `question 2`, ...)
//! would otherwise fall into the dev split far more or less often than the fraction.

use super::chat::Conversation;
use super::error::{DataError, Result};

const FNV_OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// 64-bit FNV-1a hash of `bytes`.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut hash = FNV_OFFSET_BASIS;
    for &byte in bytes {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(FNV_PRIME);
    }
    hash
}

/// The MurmurHash3 64-bit finalizer (`fmix64`): every input bit affects every output bit.
pub fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^ (k >> 33)
}

/// The position of `text` in [0, 1), from the top 53 bits of its mixed FNV-1a hash.
pub fn hash_fraction(text: &str) -> f64 {
    (fmix64(fnv1a64(text.as_bytes())) >> 11) as f64 / (1u64 << 53) as f64
}

/// Whether an example whose user text is `text` belongs to the dev split.
pub fn is_dev(text: &str, dev_fraction: f64) -> bool {
    hash_fraction(text) < dev_fraction
}

/// Checks that `dev_fraction` lies in [0, 1].
pub fn check_dev_fraction(dev_fraction: f64) -> Result<()> {
    if (0.0..=1.0).contains(&dev_fraction) {
        Ok(())
    } else {
        Err(DataError::Invalid(format!("dev fraction {dev_fraction} is outside [0, 1]; use for example 0.1 for 10% dev examples")))
    }
}

/// Splits `conversations` into (train, dev), keeping their order.
pub fn split_train_dev(conversations: Vec<Conversation>, dev_fraction: f64) -> Result<(Vec<Conversation>, Vec<Conversation>)> {
    check_dev_fraction(dev_fraction)?;
    let (dev, train): (Vec<_>, Vec<_>) = conversations.into_iter().partition(|c| is_dev(&c.user_text(), dev_fraction));
    Ok((train, dev))
}
