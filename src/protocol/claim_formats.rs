//! The formats OpenID Connect Core §5.1 gives the standard claims whose syntax is fixed:
//! `birthdate`, `zoneinfo`, `locale`, `phone_number` and the members of `address` (§5.1.1).
//! Pure; each check says what is wrong in words the admin API passes on.

use std::str::FromStr;

/// A name-like claim (`given_name`, `nickname`, an address line …): at most this many characters.
pub const MAX_TEXT: usize = 200;
/// `formatted` and `street_address` may span lines (§5.1.1), so they get more room.
pub const MAX_MULTILINE: usize = 500;
/// `gender`: "female", "male" or another short value (§5.1).
pub const MAX_GENDER: usize = 64;
/// RFC 5646 §4.4.1 asks implementations to keep at least 35 characters of a tag; extensions
/// and private use can make it longer, but nothing a relying party reads needs more than this.
pub const MAX_LOCALE: usize = 64;

/// §5.1 `birthdate`: "ISO 8601-1 YYYY-MM-DD format. The year MAY be 0000, indicating that it is
/// omitted. To represent only the year, YYYY format is allowed." The date must exist (no
/// 2023-02-29); with the year omitted, 29 February is allowed (it exists in some year).
pub fn birthdate(value: &str) -> Result<(), String> {
    let bad = || format!("{value:?} is not a birthdate: use YYYY-MM-DD, 0000-MM-DD or YYYY");
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    match value.len() {
        4 if digits(value) => {
            // A year alone of 0000 would say nothing at all.
            if value == "0000" {
                return Err(bad());
            }
            Ok(())
        }
        // ASCII first, so that the slices below cut at character boundaries.
        10 if value.is_ascii() => {
            let (y, m, d) = (&value[..4], &value[5..7], &value[8..]);
            if &value[4..5] != "-" || &value[7..8] != "-" || !digits(y) || !digits(m) || !digits(d)
            {
                return Err(bad());
            }
            let year: u32 = y.parse().map_err(|_| bad())?;
            let month: u32 = m.parse().map_err(|_| bad())?;
            let day: u32 = d.parse().map_err(|_| bad())?;
            // 0000 (year omitted) counts as leap: 29 February exists in some year.
            let leap =
                year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400));
            let days = match month {
                1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
                4 | 6 | 9 | 11 => 30,
                2 if leap => 29,
                2 => 28,
                _ => return Err(format!("{value:?} has no month {month}")),
            };
            if day == 0 || day > days {
                return Err(format!(
                    "{value:?} is not a date: that month has {days} days"
                ));
            }
            Ok(())
        }
        _ => Err(bad()),
    }
}

/// §5.1 `zoneinfo`: "String from IANA Time Zone Database representing the End-User's time zone.
/// For example, Europe/Paris or America/Los_Angeles." Checked against the zone and link names of
/// the `chrono-tz` crate (the IANA database, kept current by its maintainers), exactly as
/// spelt: relying parties look the name up as is.
pub fn zoneinfo(value: &str) -> Result<(), String> {
    if value.len() <= 64 && chrono_tz::Tz::from_str(value).is_ok() {
        return Ok(());
    }
    Err(format!(
        "{value:?} is not an IANA time zone name such as Europe/Paris or America/Los_Angeles"
    ))
}

/// §5.1 `locale`: "a BCP47 [RFC5646] language tag", e.g. `en-US`, `fr-CA`, `zh-Hant-TW`. The
/// syntax of RFC 5646 §2.1 (language, extlang, script, region, variants, extensions, private
/// use); whether the subtags are registered is not checked. The underscore form some software
/// uses (`en_US`, which §5.1 lets relying parties accept) is refused: Clavex releases tags.
pub fn locale(value: &str) -> Result<(), String> {
    if value.len() <= MAX_LOCALE && is_language_tag(value) {
        return Ok(());
    }
    let hint = if value.contains('_') {
        format!(" (use {})", value.replace('_', "-"))
    } else {
        String::new()
    };
    Err(format!(
        "{value:?} is not a BCP 47 language tag such as en, en-US or zh-Hant-TW{hint}"
    ))
}

fn is_language_tag(tag: &str) -> bool {
    let subtags: Vec<&str> = tag.split('-').collect();
    let alpha = |s: &str| s.bytes().all(|b| b.is_ascii_alphabetic());
    let digit = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if subtags
        .iter()
        .any(|s| s.is_empty() || s.len() > 8 || !s.bytes().all(|b| b.is_ascii_alphanumeric()))
    {
        return false;
    }
    let n = subtags.len();
    // language = 2*3ALPHA ["-" extlang] / 4ALPHA / 5*8ALPHA. Only the first form: 4 letters are
    // reserved and no 5-8 letter language subtag is registered (RFC 5646 §2.2.1), so a tag
    // such as "english" is a mistake, not a language. Private-use-only tags (`x-…`) name no
    // language either.
    let language = subtags[0];
    if !(2..=3).contains(&language.len()) || !alpha(language) {
        return false;
    }
    let mut i = 1;
    // extlang = 3ALPHA *2("-" 3ALPHA)
    let mut extlangs = 0;
    while i < n && extlangs < 3 && subtags[i].len() == 3 && alpha(subtags[i]) {
        i += 1;
        extlangs += 1;
    }
    // script = 4ALPHA
    if i < n && subtags[i].len() == 4 && alpha(subtags[i]) {
        i += 1;
    }
    // region = 2ALPHA / 3DIGIT
    if i < n
        && ((subtags[i].len() == 2 && alpha(subtags[i]))
            || (subtags[i].len() == 3 && digit(subtags[i])))
    {
        i += 1;
    }
    // variant = 5*8alphanum / (DIGIT 3alphanum); §2.2.5: the same variant not twice.
    let mut variants: Vec<String> = Vec::new();
    while i < n {
        let s = subtags[i];
        let is_variant =
            (5..=8).contains(&s.len()) || (s.len() == 4 && s.as_bytes()[0].is_ascii_digit());
        if !is_variant {
            break;
        }
        let lower = s.to_ascii_lowercase();
        if variants.contains(&lower) {
            return false;
        }
        variants.push(lower);
        i += 1;
    }
    // extension = singleton 1*("-" (2*8alphanum)); §2.2.6: each singleton at most once.
    let mut singletons: Vec<u8> = Vec::new();
    while i < n && subtags[i].len() == 1 && !subtags[i].eq_ignore_ascii_case("x") {
        let singleton = subtags[i].as_bytes()[0].to_ascii_lowercase();
        if singletons.contains(&singleton) {
            return false;
        }
        singletons.push(singleton);
        i += 1;
        let start = i;
        while i < n && subtags[i].len() >= 2 {
            i += 1;
        }
        if i == start {
            return false;
        }
    }
    // privateuse = "x" 1*("-" (1*8alphanum))
    if i < n && subtags[i].eq_ignore_ascii_case("x") {
        return i + 1 < n;
    }
    i == n
}

/// §5.1 `phone_number`: "E.164 is RECOMMENDED as the format of this Claim, for example,
/// +1 (425) 555-1212 or +56 (2) 687 2400." Clavex stores the plain E.164 form only — `+`, then
/// 8 to 15 digits (ITU-T E.164 §6: at most 15; the shortest national numbers with their
/// country code have 8), the first not 0 (no country code starts with 0) — so that relying
/// parties can compare and dial it without parsing.
pub fn phone_number(value: &str) -> Result<(), String> {
    let digits = value.strip_prefix('+').unwrap_or("");
    let ok = (8..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0');
    if ok {
        return Ok(());
    }
    Err(format!(
        "{value:?} is not an E.164 phone number: + and 8-15 digits without spaces, e.g. +14255551212"
    ))
}

/// A text claim: trimmed (as `name` is), non-empty, at most `max` characters, no control
/// characters — except that `multiline` text may break lines with "\n" or "\r\n" (§5.1.1 for
/// `formatted` and `street_address`). Returns the value to store.
pub fn text(value: &str, max: usize, multiline: bool) -> Result<String, String> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err("must not be empty".into());
    }
    if trimmed.chars().count() > max {
        return Err(format!("must be at most {max} characters"));
    }
    let mut chars = trimmed.chars().peekable();
    while let Some(c) = chars.next() {
        let allowed = multiline && (c == '\n' || (c == '\r' && chars.peek() == Some(&'\n')));
        if c.is_control() && !allowed {
            return Err(if multiline {
                "must not contain control characters other than line breaks".into()
            } else {
                "must not contain control characters".into()
            });
        }
    }
    Ok(trimmed.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn birthdates_are_real_dates_in_the_three_forms() {
        for ok in [
            "1990-07-14",
            "0000-07-14",
            "1990",
            "2000-02-29",
            "0000-02-29",
            "1999-12-31",
            "0001-01-01",
        ] {
            assert!(birthdate(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "0000",
            "90",
            "19900",
            "1990-7-14",
            "1990-07-4",
            "1990/07/14",
            "1990-13-01",
            "1990-00-10",
            "1990-02-29",
            "1900-02-29",
            "1990-04-31",
            "1990-01-00",
            "1990-07-14T00:00:00Z",
            "14-07-1990",
            "1990-07",
            "+990-07-14",
            "1990-0é-1",
            "abcd",
        ] {
            assert!(birthdate(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn zoneinfo_is_an_iana_name_as_spelt() {
        for ok in [
            "Europe/Paris",
            "America/Los_Angeles",
            "UTC",
            "Asia/Kolkata",
            "America/Argentina/Buenos_Aires",
            "Etc/GMT+5",
        ] {
            assert!(zoneinfo(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "europe/paris",
            "Europe/Atlantis",
            "Paris",
            "+01:00",
            "CEST",
            "Europe/Paris ",
            "Europe//Paris",
        ] {
            assert!(zoneinfo(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn locales_follow_bcp_47_syntax() {
        for ok in [
            "en",
            "en-US",
            "fr-CA",
            "zh-Hant-TW",
            "es-419",
            "de-CH-1901",
            "sr-Latn-RS",
            "zh-yue-HK",
            "en-US-u-ca-gregory",
            "en-a-bbb-x-private",
            "sl-rozaj-biske",
            "en-us",
        ] {
            assert!(locale(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "e",
            "en_US",
            "en-",
            "-en",
            "en--US",
            "english-language",
            "en-US-u",
            "en-a-bbb-a-ccc",
            "de-1901-1901",
            "en-x",
            "en-USA1",
            "1en",
            "en US",
            "x-whatever",
            "en-US-toolongsubtag",
            "fr-CA\n",
        ] {
            assert!(locale(bad).is_err(), "{bad:?} accepted");
        }
        assert!(locale("en_US").unwrap_err().contains("use en-US"));
        assert!(locale(&format!("en-{}", ["abcdefgh"; 8].join("-"))).is_err());
    }

    #[test]
    fn phone_numbers_are_plain_e164() {
        for ok in [
            "+14255551212",
            "+33123456789",
            "+12345678",
            "+123456789012345",
        ] {
            assert!(phone_number(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "+",
            "14255551212",
            "+1 425 555 1212",
            "+1 (425) 555-1212",
            "+1234567",
            "+1234567890123456",
            "+04255551212",
            "++14255551212",
            "+1425555121x",
            "+14255551212;ext=5",
            "+١٢٣٤٥٦٧٨٩",
        ] {
            assert!(phone_number(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn text_is_trimmed_bounded_and_lines_only_where_allowed() {
        assert_eq!(text("  Jane ", MAX_TEXT, false).unwrap(), "Jane");
        assert!(text("   ", MAX_TEXT, false).is_err());
        assert!(text(&"é".repeat(MAX_TEXT), MAX_TEXT, false).is_ok());
        assert!(text(&"é".repeat(MAX_TEXT + 1), MAX_TEXT, false).is_err());
        assert!(text("a\nb", MAX_TEXT, false).is_err());
        assert!(text("a\u{0}b", MAX_TEXT, true).is_err());
        assert_eq!(
            text("1 Main St\r\nApt 2\nSpringfield", MAX_MULTILINE, true).unwrap(),
            "1 Main St\r\nApt 2\nSpringfield"
        );
        assert!(text("a\rb", MAX_MULTILINE, true).is_err());
        assert!(text("a\tb", MAX_MULTILINE, true).is_err());
    }
}
