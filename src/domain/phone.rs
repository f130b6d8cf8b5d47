//! Vietnamese phone numbers to E.164 (`+84xxxxxxxxx`), with libphonenumber's rules for validity and the
//! 2018 conversion of old 11-digit mobile numbers that Excel exports still carry.

use phonenumber::country::Id::VN;

/// Old 11-digit mobile prefixes (after the leading 0) and their 2018 replacement.
const OLD_PREFIXES: &[(&str, &str)] = &[
    ("162", "32"),
    ("163", "33"),
    ("164", "34"),
    ("165", "35"),
    ("166", "36"),
    ("167", "37"),
    ("168", "38"),
    ("169", "39"),
    ("120", "70"),
    ("121", "79"),
    ("122", "77"),
    ("126", "76"),
    ("128", "78"),
    ("123", "83"),
    ("124", "84"),
    ("125", "85"),
    ("127", "81"),
    ("129", "82"),
    ("186", "56"),
    ("188", "58"),
    ("199", "59"),
];

/// The mobile network of an E.164 Vietnamese number by its prefix (numbers moved between networks
/// keep their prefix, so this is the usual estimate, not a lookup), as named in price lists.
pub fn carrier(e164: &str) -> Option<&'static str> {
    let national = e164.strip_prefix("+84")?;
    let p2 = national.get(..2)?;
    Some(match p2 {
        "86" | "96" | "97" | "98" | "32" | "33" | "34" | "35" | "36" | "37" | "38" | "39" => {
            "viettel"
        }
        "88" | "91" | "94" | "81" | "82" | "83" | "84" | "85" => "vinaphone",
        "89" | "90" | "93" | "70" | "76" | "77" | "78" | "79" => "mobifone",
        "92" | "56" | "58" => "vietnamobile",
        "99" | "59" => "gmobile",
        "87" => "itel",
        "55" => "reddi",
        _ => return None,
    })
}

/// Parses what a school typed or exported into E.164, or says why not (in Vietnamese, for staff).
pub fn normalize_vn_phone(input: &str) -> Result<String, String> {
    let digits: String = input.chars().filter(|c| c.is_ascii_digit()).collect();
    let has_plus = input.trim_start().starts_with('+');
    if digits.is_empty() {
        return Err("số điện thoại trống hoặc không có chữ số".into());
    }
    if input.chars().any(|c| c.is_alphabetic()) {
        return Err(format!("số điện thoại \"{input}\" chứa chữ cái"));
    }
    // National significant number (without 0 / 84).
    let nsn: &str = if has_plus || (digits.starts_with("84") && digits.len() >= 11) {
        digits.strip_prefix("84").unwrap_or(&digits)
    } else if let Some(rest) = digits.strip_prefix('0') {
        rest
    } else {
        // Excel drops the leading 0 of `0912345678`.
        &digits
    };
    if has_plus && !digits.starts_with("84") {
        return Err(format!(
            "số điện thoại \"{input}\" không phải số Việt Nam (+84)"
        ));
    }
    // `(+84) 0912 345 678`: the trunk 0 written after the country code.
    let nsn = match nsn.strip_prefix('0') {
        Some(rest) if has_plus || digits.starts_with("840") => rest,
        _ => nsn,
    };
    let mut nsn = nsn.to_string();
    if nsn.len() == 10
        && let Some((old, new)) = OLD_PREFIXES.iter().find(|(old, _)| nsn.starts_with(old))
    {
        nsn = format!("{new}{}", &nsn[old.len()..]);
    }
    let parsed = phonenumber::parse(Some(VN), format!("+84{nsn}"))
        .map_err(|_| format!("số điện thoại \"{input}\" không đúng định dạng"))?;
    if !phonenumber::is_valid(&parsed) {
        return Err(format!("số điện thoại \"{input}\" không hợp lệ"));
    }
    Ok(parsed.format().mode(phonenumber::Mode::E164).to_string())
}

/// Whether an E.164 Vietnamese number is a fixed line: the national numbering plan gives landlines
/// the `02x` area codes (`0218 3851 234`, `024 3825 1234`), mobiles `03`, `05`, `07`, `08` and `09`.
/// A fixed line cannot receive SMS or Zalo.
pub fn is_landline(e164: &str) -> bool {
    e164.strip_prefix("+84")
        .is_some_and(|national| national.starts_with('2'))
}

#[cfg(test)]
mod carrier_tests {
    #[test]
    fn carriers_by_prefix() {
        assert_eq!(super::carrier("+84372345678"), Some("viettel"));
        assert_eq!(super::carrier("+84912345678"), Some("vinaphone"));
        assert_eq!(super::carrier("+84772345678"), Some("mobifone"));
        assert_eq!(super::carrier("+84562345678"), Some("vietnamobile"));
        assert_eq!(super::carrier("+84212345678"), None, "a landline");
        assert_eq!(super::carrier("0912345678"), None, "not E.164");
    }
}

#[cfg(test)]
mod tests {
    use super::normalize_vn_phone as n;

    #[test]
    fn accepts_the_forms_schools_have() {
        for input in [
            "0912345678",
            "84912345678",
            "+84 912 345 678",
            "912345678",
            "091.234.5678",
            "(+84) 0912 345 678",
            "0912\u{a0}345\u{a0}678",
        ] {
            assert_eq!(n(input).as_deref(), Ok("+84912345678"), "{input}");
        }
    }

    #[test]
    fn landlines_are_told_from_mobiles() {
        let fixed = n("0218 3851 234").unwrap();
        assert_eq!(fixed, "+842183851234");
        assert!(super::is_landline(&fixed));
        assert!(super::is_landline(&n("024 3825 1234").unwrap()));
        assert!(!super::is_landline(&n("0912345678").unwrap()));
    }

    #[test]
    fn converts_old_eleven_digit_numbers() {
        assert_eq!(n("01672345678").as_deref(), Ok("+84372345678"));
        assert_eq!(n("01234567890").as_deref(), Ok("+84834567890"));
        assert_eq!(n("01992345678").as_deref(), Ok("+84592345678"));
    }

    #[test]
    fn rejects_garbage() {
        assert!(n("").is_err());
        assert!(n("abc").is_err());
        assert!(n("12345").is_err());
        assert!(n("+1 415 555 0100").is_err());
        assert!(n("09123").is_err());
    }
}
