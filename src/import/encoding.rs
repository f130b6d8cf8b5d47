//! Decodes roster CSV bytes from the encodings Vietnamese school tools export (UTF-8, UTF-16,
//! Windows-1258, TCVN3/ABC) into NFC text, detecting the encoding when the operator gives none.
//!
//! Detection, in order:
//! 1. A byte-order mark decides: `EF BB BF` is UTF-8, `FF FE` UTF-16 LE, `FE FF` UTF-16 BE
//!    (Excel's "Unicode text"). Content that then fails to decode is an error, not a guess: the
//!    file declared what it is, and guessing a legacy encoding would silently garble names.
//! 2. Bytes that are valid UTF-8 are UTF-8 (legacy Vietnamese text is practically never valid
//!    UTF-8 by accident, since its high bytes would have to form exact lead/continuation runs).
//! 3. Otherwise the first `SAMPLE_LEN` bytes are decoded both as Windows-1258 and as TCVN3, and
//!    each text gets a "looks like Vietnamese" score (see `vietnamese_score`); the higher
//!    score wins, a tie goes to Windows-1258 (the encoding Windows itself ships).

use std::fmt;

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::{decompose_canonical, is_combining_mark};

/// The encodings a roster CSV may come in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Utf8,
    Utf16,
    Windows1258,
    Tcvn3,
}

impl Encoding {
    /// Parses what an operator types: "utf-8", "utf8", "windows-1258", "cp1258", "1258", "tcvn3",
    /// "abc", "vn3", "utf-16" (case-insensitive, surrounding spaces ignored). None if unknown.
    pub fn parse(s: &str) -> Option<Encoding> {
        match s.trim().to_ascii_lowercase().as_str() {
            "utf-8" | "utf8" => Some(Encoding::Utf8),
            "utf-16" | "utf16" => Some(Encoding::Utf16),
            "windows-1258" | "windows1258" | "cp1258" | "1258" => Some(Encoding::Windows1258),
            "tcvn3" | "tcvn-3" | "abc" | "vn3" => Some(Encoding::Tcvn3),
            _ => None,
        }
    }

    /// Stable name for reports: "utf-8", "utf-16", "windows-1258", "tcvn3".
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Utf8 => "utf-8",
            Encoding::Utf16 => "utf-16",
            Encoding::Windows1258 => "windows-1258",
            Encoding::Tcvn3 => "tcvn3",
        }
    }
}

/// Why a file could not be decoded. The message is Vietnamese, for school staff; byte positions
/// in it count from 0 (as hex viewers show them), line numbers from 1.
#[derive(Debug, PartialEq, Eq)]
pub struct DecodeError(pub String);

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DecodeError {}

/// How much of a legacy-encoded file the detector looks at. Rosters put their Vietnamese in the
/// first rows already; capping the sample keeps detection cost fixed however large the upload.
const SAMPLE_LEN: usize = 64 * 1024;

/// Decodes a CSV file's bytes to text, NFC-normalised. With `forced`, uses that encoding (errors
/// only if UTF-8/UTF-16 are forced and invalid; a forced UTF-8 or UTF-16 file may still start
/// with its BOM, which is dropped; forced UTF-16 without a BOM is read as little-endian, as Excel
/// writes it). Without, detects as the module documentation says; then the only error is a file
/// whose BOM declares UTF-8 or UTF-16 but whose content is not. Returns the text and the
/// encoding used.
pub fn decode(bytes: &[u8], forced: Option<Encoding>) -> Result<(String, Encoding), DecodeError> {
    let encoding = match forced {
        Some(encoding) => encoding,
        None => detect(bytes),
    };
    let text = match encoding {
        Encoding::Utf8 => decode_utf8(bytes.strip_prefix(UTF8_BOM).unwrap_or(bytes))?,
        Encoding::Utf16 => decode_utf16(bytes)?,
        Encoding::Windows1258 => decode_windows_1258(bytes),
        Encoding::Tcvn3 => decode_tcvn3(bytes),
    };
    Ok((nfc(text), encoding))
}

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Picks an encoding for unlabelled bytes (see the module documentation).
fn detect(bytes: &[u8]) -> Encoding {
    if bytes.starts_with(UTF8_BOM) {
        return Encoding::Utf8;
    }
    if bytes.starts_with(b"\xFF\xFE") || bytes.starts_with(b"\xFE\xFF") {
        return Encoding::Utf16;
    }
    if std::str::from_utf8(bytes).is_ok() {
        return Encoding::Utf8;
    }
    // Single-byte encodings, so any cut point is a character boundary. Windows-1258's combining
    // tone mark after a cut-off base letter only costs one stray mark in a 64 kB sample.
    let sample = &bytes[..bytes.len().min(SAMPLE_LEN)];
    let cp1258 = vietnamese_score(&nfc(decode_windows_1258(sample)));
    let tcvn3 = vietnamese_score(&decode_tcvn3(sample));
    if tcvn3 > cp1258 {
        Encoding::Tcvn3
    } else {
        Encoding::Windows1258
    }
}

fn nfc(text: String) -> String {
    // Most uploads are already NFC; the quick check avoids copying them.
    if unicode_normalization::is_nfc(&text) {
        text
    } else {
        text.nfc().collect()
    }
}

fn decode_utf8(bytes: &[u8]) -> Result<String, DecodeError> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Ok(text.to_owned()),
        Err(err) => {
            let at = err.valid_up_to();
            // `at` is always inside `bytes` when the input is invalid; the fallback only keeps
            // this free of indexing panics.
            let byte = bytes.get(at).copied().unwrap_or(0);
            let what = if err.error_len().is_none() {
                "tệp kết thúc giữa chừng một ký tự UTF-8"
            } else {
                "tệp không phải UTF-8 hợp lệ"
            };
            Err(DecodeError(format!(
                "{what} (byte 0x{byte:02X} ở vị trí {at}, dòng {})",
                line_of(bytes, at)
            )))
        }
    }
}

/// Decodes UTF-16 by hand rather than through encoding_rs so the error can say where the bad
/// code unit is.
fn decode_utf16(bytes: &[u8]) -> Result<String, DecodeError> {
    let (big_endian, body) = if let Some(rest) = bytes.strip_prefix(b"\xFE\xFF") {
        (true, rest)
    } else if let Some(rest) = bytes.strip_prefix(b"\xFF\xFE") {
        (false, rest)
    } else {
        (false, bytes)
    };
    let bom_len = bytes.len() - body.len();
    if body.len() % 2 != 0 {
        return Err(DecodeError(format!(
            "tệp không phải UTF-16 hợp lệ (số byte lẻ: {}, thiếu byte cuối)",
            bytes.len()
        )));
    }
    let units = body.chunks_exact(2).map(|pair| {
        let pair = [pair[0], pair[1]];
        if big_endian {
            u16::from_be_bytes(pair)
        } else {
            u16::from_le_bytes(pair)
        }
    });
    let mut text = String::with_capacity(body.len() / 2);
    // Position of the next code unit, to report where an unpaired surrogate sits.
    let mut unit_index = 0usize;
    for decoded in char::decode_utf16(units) {
        match decoded {
            Ok(c) => {
                text.push(c);
                unit_index += c.len_utf16();
            }
            Err(err) => {
                let at = bom_len + 2 * unit_index;
                return Err(DecodeError(format!(
                    "tệp không phải UTF-16 hợp lệ (nửa cặp thay thế 0x{:04X} không có cặp, ở vị trí {at})",
                    err.unpaired_surrogate()
                )));
            }
        }
    }
    Ok(text)
}

/// 1-based line number of byte offset `at`.
fn line_of(bytes: &[u8], at: usize) -> usize {
    let end = at.min(bytes.len());
    1 + bytes[..end].iter().filter(|&&b| b == b'\n').count()
}

/// Windows-1258 through encoding_rs (WHATWG table: every byte maps, so this never fails). The
/// result is decomposed where the code page is: base letter + one of its five combining tone
/// marks; the caller normalises.
fn decode_windows_1258(bytes: &[u8]) -> String {
    encoding_rs::WINDOWS_1258
        .decode_without_bom_handling(bytes)
        .0
        .into_owned()
}

fn decode_tcvn3(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(bytes.len() + bytes.len() / 2);
    for &b in bytes {
        text.push(match b {
            0x00..=0x7F => char::from(b),
            _ => TCVN3_HIGH[usize::from(b - 0x80)],
        });
    }
    text
}

/// TCVN 5712:1993 VN3 ("TCVN3", "ABC"), bytes 0x80..=0xFF. VN3 redefines no byte below 0x80
/// (VN1, the full variant that libiconv calls "TCVN", puts capitals at 0x01-0x17; VN3 does not).
///
/// Checked against UniKey's converter table (`SingleByteTables`, TCVN3 row, in `unikey/data.cpp`
/// of fcitx/fcitx5-unikey, a maintained fork of Pham Kim Long's VnConv) and, for the letters,
/// against libiconv's `lib/tcvn.h` (VN1, whose lower-case letters and Ă Â Ê Ô Ơ Ư Đ sit at the
/// same bytes as VN3's). VN3 has no tone-marked capitals: ABC fonts draw those from the
/// lower-case codes in a separate capital font, so such text decodes to lower-case letters.
///
/// Bytes VN3 leaves undefined: 0x80-0x9F carry Windows-1252 punctuation (“ ” – … etc.) because
/// ABC fonts are Windows fonts and UniKey converts them so; 0xA0 is a no-break space; every other
/// undefined byte (0x81 0x8D 0x8F 0x90 0x9D 0xAF-0xB4 0xBA 0xBF 0xC0-0xC5 0xCD 0xD9-0xDB 0xE0
/// 0xF0 0xFF) decodes to U+FFFD, so damage shows instead of passing for a plausible letter.
#[rustfmt::skip]
const TCVN3_HIGH: [char; 128] = [
    // x0   x1   x2   x3   x4   x5   x6   x7   x8   x9   xA   xB   xC   xD   xE   xF
    '€', UND, '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', UND, 'Ž', UND,  // 0x80
    UND, '‘', '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', UND, 'ž', 'Ÿ',  // 0x90
    NBSP,'Ă', 'Â', 'Ê', 'Ô', 'Ơ', 'Ư', 'Đ', 'ă', 'â', 'ê', 'ô', 'ơ', 'ư', 'đ', UND,  // 0xA0
    UND, UND, UND, UND, UND, 'à', 'ả', 'ã', 'á', 'ạ', UND, 'ằ', 'ẳ', 'ẵ', 'ắ', UND,  // 0xB0
    UND, UND, UND, UND, UND, UND, 'ặ', 'ầ', 'ẩ', 'ẫ', 'ấ', 'ậ', 'è', UND, 'ẻ', 'ẽ',  // 0xC0
    'é', 'ẹ', 'ề', 'ể', 'ễ', 'ế', 'ệ', 'ì', 'ỉ', UND, UND, UND, 'ĩ', 'í', 'ị', 'ò',  // 0xD0
    UND, 'ỏ', 'õ', 'ó', 'ọ', 'ồ', 'ổ', 'ỗ', 'ố', 'ộ', 'ờ', 'ở', 'ỡ', 'ớ', 'ợ', 'ù',  // 0xE0
    UND, 'ủ', 'ũ', 'ú', 'ụ', 'ừ', 'ử', 'ữ', 'ứ', 'ự', 'ỳ', 'ỷ', 'ỹ', 'ý', 'ỵ', UND,  // 0xF0
];

/// What an undefined TCVN3 byte decodes to.
const UND: char = '\u{FFFD}';
const NBSP: char = '\u{A0}';

// ---------------------------------------------------------------------------------------------
// Scoring: how Vietnamese does a decoded text look?
//
// Both candidates decode ASCII identically, so only what the high bytes became matters. A wrong
// guess shows in typical ways:
// - Windows-1258 reading TCVN3: tone-marked letters come out as symbols ('¸' for á, 'µ' for à,
//   '§' for Đ, '¨' for ă), as non-Vietnamese letters ('ä' for ọ, 'Ç' for ầ), as capitals inside
//   lower-case words ("NguyÔn"), or as combining tone marks on consonants ("Th" + U+0303 for
//   "Thị") that NFC cannot compose.
// - TCVN3 reading Windows-1258: the combining tone mark bytes become tone-marked vowels of their
//   own, so syllables carry two tones ("Nguyờịn" for "Nguyễn"), and some bytes are undefined.
// A real Vietnamese syllable has at most one tone mark, and roster words ("Họ", "tên", "Lớp",
// family names) recur, so those earn extra points.
// ---------------------------------------------------------------------------------------------

/// Per Vietnamese letter (non-ASCII) in a word that looks like a Vietnamese syllable.
const GOOD_LETTER: i64 = 3;
/// Per frequent roster word.
const KEYWORD: i64 = 8;
/// Per non-ASCII letter (plus one) in a word that cannot be a Vietnamese syllable.
const BAD_WORD_LETTER: i64 = 4;
/// Control characters (C0 other than tab/CR/LF, C1) and U+FFFD: no roster contains them.
const CONTROL: i64 = 12;
/// Symbols and non-Vietnamese letters, which Vietnamese text rarely uses.
const ODD_CHAR: i64 = 6;

/// Frequent words in rosters (lower case, NFC), only those with non-ASCII letters since the
/// ASCII ones score the same in both candidates.
const ROSTER_WORDS: &[&str] = &[
    "họ",
    "tên",
    "lớp",
    "học",
    "số",
    "điện",
    "thoại",
    "phụ",
    "và",
    "ngày",
    "tháng",
    "năm",
    "giới",
    "tính",
    "nữ",
    "địa",
    "chỉ",
    "mẹ",
    "ông",
    "bà",
    "trường",
    "danh",
    "sách",
    "nguyễn",
    "trần",
    "lê",
    "phạm",
    "hoàng",
    "huỳnh",
    "vũ",
    "võ",
    "đặng",
    "bùi",
    "đỗ",
    "hồ",
    "ngô",
    "dương",
    "lý",
    "đinh",
    "thị",
    "văn",
    "đức",
    "minh",
    "anh",
    "ánh",
    "thủy",
    "thúy",
    "hương",
    "hải",
    "sđt",
    "giáo",
    "viên",
    "chủ",
    "nhiệm",
    "khối",
    "mã",
];

/// Punctuation that Vietnamese documents do use and that both candidates decode alike or that
/// carries no signal; neutral.
const NEUTRAL_PUNCTUATION: &[char] = &['\u{A0}', '‘', '’', '“', '”', '–', '—', '…', '•', '°', '€'];

const TONE_MARKS: [char; 5] = ['\u{300}', '\u{301}', '\u{303}', '\u{309}', '\u{323}'];

/// A non-ASCII Vietnamese letter: its tone, its case, and the lower-case letter without tone.
struct VietLetter {
    toned: bool,
    upper: bool,
    /// 'ậ' -> 'â', 'Ử' -> 'ư', 'Á' -> 'a', 'Đ' -> 'đ'.
    plain: char,
}

/// Classifies `c` as one of the 134 non-ASCII Vietnamese letters (đ, ă â ê ô ơ ư, and the
/// vowels with one of the five tones) by its canonical decomposition, which avoids a hand-typed
/// list of 134 look-alike characters.
fn viet_letter(c: char) -> Option<VietLetter> {
    match c {
        'đ' | 'Đ' => {
            return Some(VietLetter {
                toned: false,
                upper: c == 'Đ',
                plain: 'đ',
            });
        }
        _ => {}
    }
    if !matches!(u32::from(c), 0xC0..=0x1B0 | 0x1EA0..=0x1EF9) {
        return None;
    }
    let mut base = None;
    let mut modifier = None;
    let mut tones = 0u8;
    let mut foreign_mark = false;
    decompose_canonical(c, |part| {
        if base.is_none() {
            base = Some(part);
        } else if TONE_MARKS.contains(&part) {
            tones += 1;
        } else if matches!(part, '\u{302}' | '\u{306}' | '\u{31B}') && modifier.is_none() {
            modifier = Some(part);
        } else {
            foreign_mark = true;
        }
    });
    let base = base?;
    if foreign_mark || tones > 1 {
        return None;
    }
    let plain = match (base.to_ascii_lowercase(), modifier) {
        // A plain vowel is only non-ASCII (and only reaches here) with a tone.
        (v @ ('a' | 'e' | 'i' | 'o' | 'u' | 'y'), None) if tones == 1 => v,
        ('a', Some('\u{302}')) => 'â',
        ('a', Some('\u{306}')) => 'ă',
        ('e', Some('\u{302}')) => 'ê',
        ('o', Some('\u{302}')) => 'ô',
        ('o', Some('\u{31B}')) => 'ơ',
        ('u', Some('\u{31B}')) => 'ư',
        _ => return None,
    };
    Some(VietLetter {
        toned: tones == 1,
        upper: base.is_ascii_uppercase(),
        plain,
    })
}

/// Longest Vietnamese syllable ("nghiêng") is 7 letters; longer words are not judged by shape.
const MAX_SYLLABLE: usize = 8;

fn is_vowel(c: char) -> bool {
    matches!(
        c,
        'a' | 'ă' | 'â' | 'e' | 'ê' | 'i' | 'o' | 'ô' | 'ơ' | 'u' | 'ư' | 'y'
    )
}

/// Vowel groups (without tone) that Vietnamese syllables have, generously: a wrong decoding
/// tends to produce groups such as "oũ" ("Họ" read as TCVN3) or "ei" ("Nội" read as 1258).
const NUCLEI: &[&str] = &[
    "a", "ă", "â", "e", "ê", "i", "o", "ô", "ơ", "u", "ư", "y", "ai", "ao", "au", "ay", "âu", "ây",
    "eo", "êu", "ia", "iê", "iu", "oa", "oă", "oe", "oi", "oo", "ôi", "ơi", "ua", "uâ", "uê", "ui",
    "uô", "uơ", "uy", "ưa", "ưi", "ươ", "ưu", "yê", "iêu", "yêu", "oai", "oao", "oay", "oeo",
    "uây", "uôi", "uya", "uyê", "uyu", "ươi", "ươu",
];

/// Groups that never end a syllable: "ăn", "tân", "tiên", "uống", "trường", "nguyễn".
const NEED_FINAL: &[&str] = &["iê", "yê", "uô", "ươ", "uyê"];

/// Whether `plain` (lower case, tones removed) has the shape of one Vietnamese syllable:
/// consonants, one allowed vowel group, consonants. Words with several vowel groups (not one
/// syllable) are not judged.
fn syllable_shape_ok(plain: &[char]) -> bool {
    let mut i = plain.iter().take_while(|&&c| !is_vowel(c)).count();
    let vowel_follows = |at: usize| plain.get(at).is_some_and(|&c| is_vowel(c));
    // In "qu" and "gi" before a vowel, the u / i belongs to the initial consonant.
    if i > 0 && vowel_follows(i + 1) {
        match (plain[i - 1], plain[i]) {
            ('q', 'u') => {
                i += 1;
                if plain[i] == 'u' {
                    return false; // no syllable has "quu"
                }
            }
            ('g', 'i') => i += 1,
            _ => {}
        }
    }
    let rest = &plain[i..];
    let nucleus_len = rest.iter().take_while(|&&c| is_vowel(c)).count();
    let (nucleus, tail) = rest.split_at(nucleus_len);
    if nucleus.is_empty() || tail.iter().any(|&c| is_vowel(c)) {
        return true;
    }
    let is = |group: &&str| group.chars().eq(nucleus.iter().copied());
    if !NUCLEI.iter().any(is) {
        return false;
    }
    let needs_final = matches!(nucleus.last(), Some('ă' | 'â')) || NEED_FINAL.iter().any(is);
    !(needs_final && tail.is_empty())
}

/// Accumulates one word (a run of letters and stray marks) while scanning.
#[derive(Default)]
struct Word {
    viet_letters: i64,
    tones: u32,
    /// A stray combining mark or a non-Vietnamese non-ASCII letter: not a Vietnamese syllable.
    foreign: bool,
    /// Case that no encoding of Vietnamese produces: an upper-case non-ASCII letter after a
    /// lower-case letter ("NguyÔn"), or inside a word and followed by an ASCII lower-case
    /// letter ("BƠn"). Lower-case letters inside a capitalised word are normal in TCVN3, whose
    /// capital font draws toned capitals from lower-case codes ("HọC", "TRƯờNG").
    odd_case: bool,
    seen_lower: bool,
    inner_capital: bool,
    len: usize,
    /// The first letters, lower case without tone, for the syllable shape.
    plain: [char; MAX_SYLLABLE],
    /// The first letters, lower case with tone, for the keyword look-up.
    lower: String,
}

impl Word {
    fn push_letter(&mut self, c: char, upper: bool, plain: char) {
        let non_ascii_capital = upper && !c.is_ascii();
        if (non_ascii_capital && self.seen_lower)
            || (self.inner_capital && !upper && c.is_ascii_lowercase())
        {
            self.odd_case = true;
        }
        self.inner_capital = non_ascii_capital && self.len > 0;
        self.seen_lower |= !upper;
        if let Some(slot) = self.plain.get_mut(self.len) {
            *slot = plain;
            self.lower.extend(c.to_lowercase());
        }
        self.len += 1;
    }

    /// Scores the finished word and resets for the next one (keeping the buffer's allocation).
    fn finish(&mut self) -> i64 {
        let judged = self.len <= MAX_SYLLABLE;
        let score = if self.viet_letters == 0 && !self.foreign {
            0
        } else if self.foreign
            || self.tones > 1
            || self.odd_case
            || (judged && !syllable_shape_ok(&self.plain[..self.len]))
        {
            -BAD_WORD_LETTER * (self.viet_letters + 1)
        } else if judged && ROSTER_WORDS.contains(&self.lower.as_str()) {
            GOOD_LETTER * self.viet_letters + KEYWORD
        } else {
            GOOD_LETTER * self.viet_letters
        };
        let mut lower = std::mem::take(&mut self.lower);
        lower.clear();
        *self = Word {
            lower,
            ..Word::default()
        };
        score
    }
}

/// Scores how Vietnamese `text` (NFC) looks; higher is likelier. One pass, constant work per
/// character.
fn vietnamese_score(text: &str) -> i64 {
    let mut score = 0i64;
    let mut word = Word::default();
    for c in text.chars() {
        if c.is_ascii_alphabetic() {
            word.push_letter(c, c.is_ascii_uppercase(), c.to_ascii_lowercase());
            continue;
        }
        if let Some(letter) = viet_letter(c) {
            word.viet_letters += 1;
            word.tones += u32::from(letter.toned);
            word.push_letter(c, letter.upper, letter.plain);
            continue;
        }
        if is_combining_mark(c) {
            // Left over after NFC: a tone mark on a consonant or on an already toned letter.
            word.foreign = true;
            score -= ODD_CHAR;
            continue;
        }
        if !c.is_ascii() && c.is_alphabetic() {
            // 'ä', 'Ç', 'µ', 'ª'...: letters, but not Vietnamese ones.
            word.foreign = true;
            score -= ODD_CHAR;
            word.push_letter(c, c.is_uppercase(), '?');
            continue;
        }
        score += word.finish();
        if c.is_ascii() {
            if c.is_ascii_control() && !matches!(c, '\t' | '\n' | '\r') {
                score -= CONTROL;
            }
        } else if c == '\u{FFFD}' || c.is_control() {
            score -= CONTROL;
        } else if !NEUTRAL_PUNCTUATION.contains(&c) {
            score -= ODD_CHAR;
        }
    }
    score + word.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use unicode_normalization::UnicodeNormalization;

    /// A realistic roster: tones on every vowel kind, đ/Đ, ư/ơ, a capitalised title and
    /// capitals with tones (Ánh, Ứng, Ỷ, Ước, ĐẶNG).
    const ROSTER: &str = "DANH SÁCH HỌC SINH LỚP 4B\n\
        STT;Họ và tên;Lớp;Ngày sinh;Giới tính;Họ tên cha;SĐT cha;Địa chỉ\n\
        1;Nguyễn Thị Ánh;4B;12/03/2015;Nữ;Nguyễn Văn Đức;0912345678;Số 5 ngõ 12 phố Huế, Hà Nội\n\
        2;Trần Quốc Bảo;4B;05/11/2015;Nam;Trần Văn Dũng;0987654321;Thôn Đông, xã Ứng Hòa\n\
        3;Lê Ngọc Ánh Dương;4B;21/07/2015;Nữ;Lê Hữu Phước;0903111222;Phường Bến Nghé, Quận 1\n\
        4;Phạm Thu Hường;4B;30/01/2015;Nữ;Phạm Đình Trọng;0345678901;Khu phố Ỷ Lan, Thuận An\n\
        5;Hoàng Gia Huy;4B;09/09/2015;Nam;Hoàng Việt Thắng;0868123456;Xóm Ước Lễ, Thanh Oai\n\
        6;ĐẶNG THÙY TRANG;4B;14/02/2015;Nữ;Đặng Quang Khải;0977000111;Ấp Mỹ Điền, Cần Giuộc\n\
        7;Vũ Minh Khôi;4B;03/12/2015;Nam;Võ Thị Yến;0911222333;Tổ 7, phường Quỳnh Lôi\n\
        8;Bùi Ngọc Ưng;4B;18/06/2015;Nam;Bùi Xuân Trường;0933444555;Số 18 đường Nguyễn Trãi\n\
        9;Đỗ Khánh Linh;4B;27/04/2015;Nữ;Đỗ Mạnh Cường;0944555666;Ngõ Huyện, quận Hoàn Kiếm\n\
        10;Ngô Thị Thu Thủy;4B;11/10/2015;Nữ;Ngô Đức Thịnh;0955666777;Thị trấn Củ Chi\n";

    const HEADER: &str = "STT;Họ và tên;Lớp;Họ tên cha;SĐT cha\n";

    // --- Test-only encoders --------------------------------------------------------------------

    /// Encodes one char with encoding_rs's Windows-1258 encoder, if it has a byte for it.
    fn cp1258_char(c: char) -> Option<Vec<u8>> {
        let mut buf = [0; 4];
        let (bytes, _, had_errors) = encoding_rs::WINDOWS_1258.encode(c.encode_utf8(&mut buf));
        (!had_errors).then(|| bytes.into_owned())
    }

    /// Windows-1258 bytes for NFC `text`. encoding_rs does not normalise: it encodes the
    /// precomposed letters the code page has (Á, à, ê, ư...) and rejects the rest (ế, ạ...).
    /// The code page has only the five combining tone marks; ă â ê ô ơ ư đ are precomposed.
    /// So each letter is split into "letter without tone" (recomposed: ê, not e + U+0302) plus
    /// its tone mark. With `prefer_precomposed`, a letter the code page has whole is kept whole
    /// (Á as 0xC1), as some Windows tools write it; otherwise every tone is a separate mark.
    fn to_cp1258(text: &str, prefer_precomposed: bool) -> Vec<u8> {
        let mut out = Vec::new();
        for c in text.chars() {
            if (prefer_precomposed || c.is_ascii())
                && let Some(bytes) = cp1258_char(c)
            {
                out.extend(bytes);
                continue;
            }
            let parts: Vec<char> = c.to_string().nfd().collect();
            let tone = parts.iter().copied().find(|p| TONE_MARKS.contains(p));
            let base: String = parts
                .iter()
                .filter(|p| Some(**p) != tone)
                .collect::<String>()
                .nfc()
                .collect();
            for b in base.chars().chain(tone) {
                match cp1258_char(b) {
                    Some(bytes) => out.extend(bytes),
                    None => panic!("fixture char {b:?} (from {c:?}) has no Windows-1258 byte"),
                }
            }
        }
        out
    }

    fn tcvn3_byte(c: char) -> Option<u8> {
        if c.is_ascii() {
            return u8::try_from(c).ok();
        }
        (0x80u8..=0xFF).find(|&b| TCVN3_HIGH[usize::from(b - 0x80)] == c && c != '\u{FFFD}')
    }

    /// TCVN3 bytes for NFC `text`, and the text those bytes stand for: VN3 has no tone-marked
    /// capitals, so (as ABC users do) they are written with the lower-case code, and the
    /// expected decoding has the lower-case letter.
    fn to_tcvn3(text: &str) -> (Vec<u8>, String) {
        let mut bytes = Vec::new();
        let mut expected = String::new();
        for c in text.chars() {
            if let Some(b) = tcvn3_byte(c) {
                bytes.push(b);
                expected.push(c);
                continue;
            }
            let lower: Vec<char> = c.to_lowercase().collect();
            match (
                lower.as_slice(),
                lower.first().copied().and_then(tcvn3_byte),
            ) {
                ([l], Some(b)) => {
                    bytes.push(b);
                    expected.push(*l);
                }
                _ => panic!("fixture char {c:?} has no TCVN3 byte"),
            }
        }
        (bytes, expected)
    }

    fn utf16(text: &str, big_endian: bool, bom: bool) -> Vec<u8> {
        let mut out = Vec::new();
        if bom {
            out.extend(if big_endian {
                [0xFE, 0xFF]
            } else {
                [0xFF, 0xFE]
            });
        }
        for unit in text.encode_utf16() {
            out.extend(if big_endian {
                unit.to_be_bytes()
            } else {
                unit.to_le_bytes()
            });
        }
        out
    }

    // --- The TCVN3 table -------------------------------------------------------------------------

    #[test]
    fn tcvn3_well_known_codes() {
        let known = [
            (0xB8, 'á'),
            (0xB5, 'à'),
            (0xB6, 'ả'),
            (0xB7, 'ã'),
            (0xB9, 'ạ'),
            (0xA8, 'ă'),
            (0xA9, 'â'),
            (0xAA, 'ê'),
            (0xAB, 'ô'),
            (0xAC, 'ơ'),
            (0xAD, 'ư'),
            (0xAE, 'đ'),
            (0xA1, 'Ă'),
            (0xA2, 'Â'),
            (0xA3, 'Ê'),
            (0xA4, 'Ô'),
            (0xA5, 'Ơ'),
            (0xA6, 'Ư'),
            (0xA7, 'Đ'),
        ];
        for (byte, c) in known {
            assert_eq!(TCVN3_HIGH[byte - 0x80], c, "byte 0x{byte:02X}");
        }
    }

    /// The letters as UniKey's VnConv lists them for TCVN3, in its order: no tone, sắc, huyền,
    /// hỏi, ngã, nặng (0 marks the plain ASCII vowel).
    #[test]
    fn tcvn3_table_matches_unikey() {
        let rows: [(&str, [u8; 6]); 12] = [
            ("aáàảãạ", [0, 0xB8, 0xB5, 0xB6, 0xB7, 0xB9]),
            ("âấầẩẫậ", [0xA9, 0xCA, 0xC7, 0xC8, 0xC9, 0xCB]),
            ("ăắằẳẵặ", [0xA8, 0xBE, 0xBB, 0xBC, 0xBD, 0xC6]),
            ("eéèẻẽẹ", [0, 0xD0, 0xCC, 0xCE, 0xCF, 0xD1]),
            ("êếềểễệ", [0xAA, 0xD5, 0xD2, 0xD3, 0xD4, 0xD6]),
            ("iíìỉĩị", [0, 0xDD, 0xD7, 0xD8, 0xDC, 0xDE]),
            ("oóòỏõọ", [0, 0xE3, 0xDF, 0xE1, 0xE2, 0xE4]),
            ("ôốồổỗộ", [0xAB, 0xE8, 0xE5, 0xE6, 0xE7, 0xE9]),
            ("ơớờởỡợ", [0xAC, 0xED, 0xEA, 0xEB, 0xEC, 0xEE]),
            ("uúùủũụ", [0, 0xF3, 0xEF, 0xF1, 0xF2, 0xF4]),
            ("ưứừửữự", [0xAD, 0xF8, 0xF5, 0xF6, 0xF7, 0xF9]),
            ("yýỳỷỹỵ", [0, 0xFD, 0xFA, 0xFB, 0xFC, 0xFE]),
        ];
        let mut letters = vec![
            (0xA1, 'Ă'),
            (0xA2, 'Â'),
            (0xA3, 'Ê'),
            (0xA4, 'Ô'),
            (0xA5, 'Ơ'),
            (0xA6, 'Ư'),
            (0xA7, 'Đ'),
            (0xAE, 'đ'),
        ];
        for (chars, bytes) in rows {
            for (c, b) in chars.chars().zip(bytes) {
                if b != 0 {
                    letters.push((b, c));
                }
            }
        }
        assert_eq!(letters.len(), 74);
        for &(b, c) in &letters {
            assert_eq!(TCVN3_HIGH[usize::from(b - 0x80)], c, "byte 0x{b:02X}");
        }
        // Everything from 0xA1 up that is not a letter is undefined in VN3.
        for b in 0xA1u8..=0xFF {
            if !letters.iter().any(|&(lb, _)| lb == b) {
                assert_eq!(
                    TCVN3_HIGH[usize::from(b - 0x80)],
                    '\u{FFFD}',
                    "byte 0x{b:02X}"
                );
            }
        }
        assert_eq!(TCVN3_HIGH[0x20], '\u{A0}');
    }

    #[test]
    fn tcvn3_low_half_is_windows_1252_punctuation() {
        for b in 0x80u8..=0x9F {
            let ours = TCVN3_HIGH[usize::from(b - 0x80)];
            let cp1252 = encoding_rs::WINDOWS_1252
                .decode_without_bom_handling(&[b])
                .0
                .chars()
                .next();
            match cp1252 {
                // encoding_rs maps the five bytes Windows-1252 leaves undefined to C1 controls.
                Some(c) if c.is_control() => assert_eq!(ours, '\u{FFFD}', "byte 0x{b:02X}"),
                Some(c) => assert_eq!(ours, c, "byte 0x{b:02X}"),
                None => panic!("no char for 0x{b:02X}"),
            }
        }
    }

    #[test]
    fn encoding_rs_cp1258_encoder_does_not_decompose() {
        // Documents why `to_cp1258` splits tones itself.
        assert_eq!(cp1258_char('Á'), Some(vec![0xC1]));
        assert_eq!(cp1258_char('ê'), Some(vec![0xEA]));
        assert_eq!(cp1258_char('ế'), None);
        assert_eq!(cp1258_char('\u{301}'), Some(vec![0xEC]));
        assert_eq!(to_cp1258("ế", false), vec![0xEA, 0xEC]);
        assert_eq!(to_cp1258("Á", false), vec![b'A', 0xEC]);
    }

    #[test]
    fn viet_letter_set_has_134_letters() {
        let count = (0u32..0x2000)
            .filter_map(char::from_u32)
            .filter(|&c| viet_letter(c).is_some())
            .count();
        assert_eq!(count, 134);
        assert!(viet_letter('ä').is_none());
        assert!(viet_letter('Ñ').is_none());
        assert!(viet_letter('Ç').is_none());
        assert!(viet_letter('ǎ').is_none());
        assert!(viet_letter('ặ').is_some_and(|l| l.toned && !l.upper));
        assert!(viet_letter('Ư').is_some_and(|l| !l.toned && l.upper));
    }

    // --- Round trips and detection ----------------------------------------------------------

    #[test]
    fn windows_1258_round_trip_is_detected() {
        for prefer_precomposed in [false, true] {
            let bytes = to_cp1258(ROSTER, prefer_precomposed);
            assert!(std::str::from_utf8(&bytes).is_err());
            let (text, encoding) = decode(&bytes, None).expect("decodes");
            assert_eq!(
                encoding,
                Encoding::Windows1258,
                "precomposed: {prefer_precomposed}"
            );
            assert_eq!(text, ROSTER);
        }
    }

    #[test]
    fn tcvn3_round_trip_is_detected() {
        let (bytes, expected) = to_tcvn3(ROSTER);
        assert!(
            expected.contains("SáCH HọC SINH LớP"),
            "VN3 lower-cases toned capitals"
        );
        assert!(expected.contains("ĐặNG"), "but keeps Đ");
        let (text, encoding) = decode(&bytes, None).expect("decodes");
        assert_eq!(encoding, Encoding::Tcvn3);
        assert_eq!(text, expected);
    }

    #[test]
    fn every_single_line_is_detected() {
        for line in ROSTER.lines().filter(|l| !l.is_ascii()) {
            for prefer_precomposed in [false, true] {
                let bytes = to_cp1258(line, prefer_precomposed);
                let (text, encoding) = decode(&bytes, None).expect("decodes");
                assert_eq!(
                    (encoding, text.as_str()),
                    (Encoding::Windows1258, line),
                    "cp1258 line {line:?}"
                );
            }
            let (bytes, expected) = to_tcvn3(line);
            let (text, encoding) = decode(&bytes, None).expect("decodes");
            assert_eq!(
                (encoding, text),
                (Encoding::Tcvn3, expected),
                "tcvn3 line {line:?}"
            );
        }
    }

    #[test]
    fn short_header_is_detected() {
        for header in [HEADER, "Họ và tên", "Lớp", "SĐT"] {
            let (text, encoding) = decode(&to_cp1258(header, false), None).expect("decodes");
            assert_eq!((encoding, text.as_str()), (Encoding::Windows1258, header));
            let (text, encoding) = decode(&to_cp1258(header, true), None).expect("decodes");
            assert_eq!((encoding, text.as_str()), (Encoding::Windows1258, header));
            let (bytes, expected) = to_tcvn3(header);
            let (text, encoding) = decode(&bytes, None).expect("decodes");
            assert_eq!((encoding, text), (Encoding::Tcvn3, expected), "{header:?}");
        }
    }

    #[test]
    fn utf8_plain_and_with_bom() {
        let (text, encoding) = decode(ROSTER.as_bytes(), None).expect("decodes");
        assert_eq!((encoding, text.as_str()), (Encoding::Utf8, ROSTER));

        let mut with_bom = UTF8_BOM.to_vec();
        with_bom.extend(ROSTER.as_bytes());
        let (text, encoding) = decode(&with_bom, None).expect("decodes");
        assert_eq!(
            (encoding, text.as_str()),
            (Encoding::Utf8, ROSTER),
            "BOM dropped"
        );

        let (text, encoding) = decode(b"", None).expect("decodes");
        assert_eq!((encoding, text.as_str()), (Encoding::Utf8, ""));
    }

    #[test]
    fn decomposed_utf8_comes_out_nfc() {
        let nfd: String = ROSTER.nfd().collect();
        assert_ne!(nfd, ROSTER);
        let (text, encoding) = decode(nfd.as_bytes(), None).expect("decodes");
        assert_eq!((encoding, text.as_str()), (Encoding::Utf8, ROSTER));
    }

    #[test]
    fn utf16_with_bom_is_detected() {
        for big_endian in [false, true] {
            let (text, encoding) = decode(&utf16(ROSTER, big_endian, true), None).expect("ok");
            assert_eq!((encoding, text.as_str()), (Encoding::Utf16, ROSTER));
        }
    }

    #[test]
    fn forced_encodings_are_used() {
        let cp1258 = to_cp1258(ROSTER, false);
        let (tcvn3, tcvn3_text) = to_tcvn3(ROSTER);

        let forced = |bytes: &[u8], encoding| decode(bytes, Some(encoding)).expect("decodes");
        assert_eq!(
            forced(&cp1258, Encoding::Windows1258),
            (ROSTER.to_owned(), Encoding::Windows1258)
        );
        assert_eq!(
            forced(&tcvn3, Encoding::Tcvn3),
            (tcvn3_text, Encoding::Tcvn3)
        );
        // Forcing the wrong legacy encoding is obeyed (and garbles), not second-guessed.
        let (garbled, encoding) = forced(&tcvn3, Encoding::Windows1258);
        assert_eq!(encoding, Encoding::Windows1258);
        assert!(garbled.contains("S¸CH"), "{garbled}");
        let (_, encoding) = forced(&cp1258, Encoding::Tcvn3);
        assert_eq!(encoding, Encoding::Tcvn3);

        assert_eq!(
            forced(ROSTER.as_bytes(), Encoding::Utf8),
            (ROSTER.to_owned(), Encoding::Utf8)
        );
        // UTF-16 forced: BOM honoured, and little-endian without one.
        assert_eq!(
            forced(&utf16(ROSTER, true, true), Encoding::Utf16),
            (ROSTER.to_owned(), Encoding::Utf16)
        );
        assert_eq!(
            forced(&utf16(ROSTER, false, false), Encoding::Utf16),
            (ROSTER.to_owned(), Encoding::Utf16)
        );
    }

    #[test]
    fn invalid_utf8_forced_is_a_vietnamese_error() {
        let (tcvn3, _) = to_tcvn3(HEADER);
        let err = decode(&tcvn3, Some(Encoding::Utf8)).expect_err("not UTF-8");
        assert_eq!(
            err.to_string(),
            "tệp không phải UTF-8 hợp lệ (byte 0xE4 ở vị trí 5, dòng 1)"
        );
        let err = decode(b"a\nb\n\xC3", Some(Encoding::Utf8)).expect_err("truncated");
        assert_eq!(
            err,
            DecodeError(
                "tệp kết thúc giữa chừng một ký tự UTF-8 (byte 0xC3 ở vị trí 4, dòng 3)".into()
            )
        );
        let boxed: Box<dyn std::error::Error> = Box::new(err);
        assert!(boxed.to_string().starts_with("tệp"));
    }

    #[test]
    fn invalid_utf16_is_an_error() {
        let err = decode(b"\xFF\xFEa\x00b", Some(Encoding::Utf16)).expect_err("odd length");
        assert!(
            err.0
                .starts_with("tệp không phải UTF-16 hợp lệ (số byte lẻ"),
            "{err}"
        );
        let err = decode(b"\xFF\xFEa\x00\x00\xD8b\x00", None).expect_err("lone surrogate");
        assert_eq!(
            err.0,
            "tệp không phải UTF-16 hợp lệ (nửa cặp thay thế 0xD800 không có cặp, ở vị trí 4)"
        );
    }

    #[test]
    fn bom_then_invalid_utf8_is_an_error_not_a_guess() {
        let mut bytes = UTF8_BOM.to_vec();
        bytes.extend(to_cp1258(HEADER, false));
        let err = decode(&bytes, None).expect_err("BOM says UTF-8");
        assert!(err.0.contains("UTF-8"), "{err}");
    }

    #[test]
    fn parse_and_name() {
        let cases = [
            ("utf-8", Encoding::Utf8),
            ("UTF8", Encoding::Utf8),
            ("Windows-1258", Encoding::Windows1258),
            ("cp1258", Encoding::Windows1258),
            ("1258", Encoding::Windows1258),
            ("TCVN3", Encoding::Tcvn3),
            ("abc", Encoding::Tcvn3),
            ("VN3", Encoding::Tcvn3),
            ("utf-16", Encoding::Utf16),
            (" utf-16 ", Encoding::Utf16),
        ];
        for (input, encoding) in cases {
            assert_eq!(Encoding::parse(input), Some(encoding), "{input:?}");
        }
        for encoding in [
            Encoding::Utf8,
            Encoding::Utf16,
            Encoding::Windows1258,
            Encoding::Tcvn3,
        ] {
            assert_eq!(Encoding::parse(encoding.name()), Some(encoding));
        }
        assert_eq!(Encoding::Windows1258.name(), "windows-1258");
        assert_eq!(Encoding::parse("latin1"), None);
        assert_eq!(Encoding::parse(""), None);
    }

    // --- Robustness ------------------------------------------------------------------------------

    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        for round in 0..4000 {
            let len = (rng.next() % 300) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    let r = rng.next();
                    match round % 3 {
                        0 => r as u8,
                        // Mostly high bytes: the legacy paths and their combining marks.
                        1 => 0x80 | r as u8,
                        _ => [b'a', b'H', b' ', 0xCC, 0xEC, 0xF2, 0xD2, 0xDE, 0xB8, 0xE4]
                            [(r % 10) as usize],
                    }
                })
                .collect();
            match decode(&bytes, None) {
                Ok((text, _)) => assert!(unicode_normalization::is_nfc(&text)),
                Err(_) => assert!(
                    bytes.starts_with(UTF8_BOM)
                        || bytes.starts_with(b"\xFF\xFE")
                        || bytes.starts_with(b"\xFE\xFF"),
                    "only a declared encoding may fail: {bytes:02X?}"
                ),
            }
            for encoding in [Encoding::Windows1258, Encoding::Tcvn3] {
                assert!(decode(&bytes, Some(encoding)).is_ok());
            }
            for encoding in [Encoding::Utf8, Encoding::Utf16] {
                let _ = decode(&bytes, Some(encoding));
            }
        }
    }

    /// Single words are the hardest case: a few are equally plausible both ways ("phố" in TCVN3
    /// reads "phè" in Windows-1258) and then the tie goes to Windows-1258. The wrong reading
    /// must never score strictly higher, and ties must stay rare.
    #[test]
    fn single_words_are_never_misread_and_rarely_tie() {
        let (mut total, mut ties) = (0, 0);
        let words = ROSTER
            .split(|c: char| c.is_whitespace() || c == ';' || c == ',')
            .filter(|w| !w.is_ascii());
        for word in words {
            let (tcvn3, _) = to_tcvn3(word);
            let cases = [
                (to_cp1258(word, false), Encoding::Windows1258),
                (to_cp1258(word, true), Encoding::Windows1258),
                (tcvn3, Encoding::Tcvn3),
            ];
            for (bytes, right) in cases {
                let as_cp1258 = vietnamese_score(&nfc(decode_windows_1258(&bytes)));
                let as_tcvn3 = vietnamese_score(&decode_tcvn3(&bytes));
                let (right_score, wrong_score) = match right {
                    Encoding::Tcvn3 => (as_tcvn3, as_cp1258),
                    _ => (as_cp1258, as_tcvn3),
                };
                assert!(right_score >= wrong_score, "{word:?} as {right:?}");
                total += 1;
                ties += usize::from(right_score == wrong_score && right == Encoding::Tcvn3);
            }
        }
        assert!(total > 200, "{total}");
        assert!(ties * 20 <= total, "{ties} ties in {total}");
    }

    fn plain(word: &str) -> Vec<char> {
        word.chars()
            .map(|c| match viet_letter(c) {
                Some(letter) => letter.plain,
                None => c.to_ascii_lowercase(),
            })
            .collect()
    }

    #[test]
    fn syllable_shapes() {
        let real = ROSTER.split(|c: char| !c.is_alphabetic()).chain([
            "nghiêng", "khuỷu", "ngoẹo", "giữa", "gìn", "quý", "Quỳnh", "khuya", "Đắk", "Lắk",
            "xoong", "thuở", "Huỳnh", "Thuý", "Tuấn", "Khuê", "Uyên", "Ước", "yêu", "khuấy",
            "người", "rượu", "oẳn", "giêng", "quyển",
        ]);
        for word in real {
            assert!(syllable_shape_ok(&plain(word)), "{word:?}");
        }
        // Wrong readings: "Họ" as TCVN3, "Nội" and "ngõ" as Windows-1258, and impossible ones.
        for word in ["hoũ", "néi", "ngâ", "tiê", "quú", "bă", "trươ"] {
            assert!(!syllable_shape_ok(&plain(word)), "{word:?}");
        }
    }

    #[test]
    fn large_file_is_detected_from_its_sample() {
        let big = ROSTER.repeat(200);
        assert!(big.len() > 2 * SAMPLE_LEN);
        let bytes = to_cp1258(&big, false);
        assert_eq!(
            decode(&bytes, None).expect("decodes"),
            (big.clone(), Encoding::Windows1258)
        );
        let (bytes, expected) = to_tcvn3(&big);
        assert_eq!(
            decode(&bytes, None).expect("decodes"),
            (expected, Encoding::Tcvn3)
        );
    }
}
