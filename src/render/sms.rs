//! SMS shaping: Vietnamese unaccenting (including đ/Đ), GSM-7 vs UCS-2 detection and segment counts.

use providers::SmsShape;

pub use crate::domain::text::unaccent;

/// GSM 03.38 basic character set. Written out by hand: it is one fixed table, and the crates that carry
/// it are PDU encoders far larger than this check.
const GSM7_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
/// Characters that take an escape plus one septet (count as two).
const GSM7_EXTENSION: &str = "^{}\\[~]|€\u{000C}";

/// The ASCII characters of a table as a 128-bit set, built at compile time. Unaccented texts are
/// almost all ASCII, and a search of the table for each character was a fifth of rendering an SMS.
const fn ascii_set(table: &str) -> u128 {
    let b = table.as_bytes();
    let mut set = 0u128;
    let mut i = 0;
    while i < b.len() {
        // Bytes of multi-byte UTF-8 characters are all >= 128, so only ASCII characters land here.
        if b[i] < 128 {
            set |= 1 << b[i];
        }
        i += 1;
    }
    set
}
const GSM7_BASIC_ASCII: u128 = ascii_set(GSM7_BASIC);
const GSM7_EXTENSION_ASCII: u128 = ascii_set(GSM7_EXTENSION);

/// Septets needed in GSM-7, or `None` when a character forces UCS-2.
fn gsm7_septets(s: &str) -> Option<usize> {
    let mut n = 0;
    for c in s.chars() {
        if c.is_ascii() {
            let bit = 1u128 << (c as u32);
            if GSM7_BASIC_ASCII & bit != 0 {
                n += 1;
            } else if GSM7_EXTENSION_ASCII & bit != 0 {
                n += 2;
            } else {
                return None;
            }
        } else if GSM7_BASIC.contains(c) {
            n += 1;
        } else if GSM7_EXTENSION.contains(c) {
            n += 2;
        } else {
            return None;
        }
    }
    Some(n)
}

/// Encoding and number of parts for a text.
pub fn shape(text: &str) -> SmsShape {
    match gsm7_septets(text) {
        Some(n) => SmsShape {
            ucs2: false,
            segments: segments(n, 160, 153),
        },
        None => {
            // UCS-2 counts UTF-16 code units: a character outside the BMP takes two.
            let units = text.encode_utf16().count();
            SmsShape {
                ucs2: true,
                segments: segments(units, 70, 67),
            }
        }
    }
}

fn segments(len: usize, single: usize, per_part: usize) -> u32 {
    if len <= single {
        1
    } else {
        len.div_ceil(per_part) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unaccents_vietnamese() {
        assert_eq!(
            unaccent("Đặng Thị Hường học lớp 6A, trường Tiểu học Mỹ Phú"),
            "Dang Thi Huong hoc lop 6A, truong Tieu hoc My Phu"
        );
        assert_eq!(unaccent("ĐƯỜNG đời Ữ ỹ"), "DUONG doi U y");
    }

    #[test]
    fn detects_encoding() {
        assert!(!shape("Kinh gui phu huynh").ucs2);
        assert!(!shape("à è é ì ò ù").ucs2, "these six are in GSM-7");
        assert!(shape("Kính gửi").ucs2);
    }

    #[test]
    fn ascii_sets_agree_with_the_tables() {
        for b in 0u8..128 {
            let c = b as char;
            let expected = if GSM7_BASIC.contains(c) {
                Some(1)
            } else if GSM7_EXTENSION.contains(c) {
                Some(2)
            } else {
                None
            };
            assert_eq!(gsm7_septets(&c.to_string()), expected, "{b}");
        }
        assert_eq!(gsm7_septets("a`b"), None, "a backtick is not in GSM-7");
        assert_eq!(gsm7_septets("{x}"), Some(5));
    }

    #[test]
    fn counts_segments() {
        assert_eq!(shape(&"a".repeat(160)).segments, 1);
        assert_eq!(shape(&"a".repeat(161)).segments, 2);
        assert_eq!(shape(&"a".repeat(306)).segments, 2);
        assert_eq!(shape(&"a".repeat(307)).segments, 3);
        assert_eq!(
            shape(&"{".repeat(80)).segments,
            1,
            "extension chars count double: 160 septets"
        );
        assert_eq!(shape(&"{".repeat(81)).segments, 2);
        assert_eq!(shape(&"ư".repeat(70)).segments, 1);
        assert_eq!(shape(&"ư".repeat(71)).segments, 2);
        assert_eq!(shape(&"ư".repeat(134)).segments, 2);
        assert_eq!(shape(&"ư".repeat(135)).segments, 3);
    }
}
