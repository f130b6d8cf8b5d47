//! Vietnamese text folding shared by SMS shaping, imports and search: diacritics stripped, đ/Đ
//! included (they do not decompose).

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// Strips Vietnamese diacritics: NFD, drop combining marks, then đ/Đ which do not decompose.
pub fn unaccent(s: &str) -> String {
    s.nfd()
        .filter(|c| !is_combining_mark(*c))
        .map(|c| match c {
            'đ' => 'd',
            'Đ' => 'D',
            c => c,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn unaccents_vietnamese_with_d() {
        assert_eq!(
            super::unaccent("Đặng Thị Ánh, lớp 4B"),
            "Dang Thi Anh, lop 4B"
        );
    }
}
