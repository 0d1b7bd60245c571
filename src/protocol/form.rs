//! Form-encoded parameters (query strings and application/x-www-form-urlencoded bodies).
//! RFC 6749 §3.1 / §3.2: "Request and response parameters MUST NOT be included more than once",
//! so lookups that matter go through `one`, which reports a repeated parameter.

use url::form_urlencoded;

#[derive(Debug, Default, Clone)]
pub struct Form(Vec<(String, String)>);

impl Form {
    pub fn parse(encoded: &str) -> Form {
        Form(
            form_urlencoded::parse(encoded.as_bytes())
                .into_owned()
                .collect(),
        )
    }

    /// The single value of `name`, treating an empty value as absent (RFC 6749 §3.1:
    /// "Parameters sent without a value MUST be treated as if they were omitted").
    /// Err(name) when the parameter is repeated.
    pub fn one<'a>(&'a self, name: &'a str) -> Result<Option<&'a str>, &'a str> {
        let mut found = self.0.iter().filter(|(k, v)| k == name && !v.is_empty());
        let first = found.next().map(|(_, v)| v.as_str());
        if found.next().is_some() {
            Err(name)
        } else {
            Ok(first)
        }
    }

    /// The first value, ignoring repeats (for parameters where repeats do no harm).
    pub fn first(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    pub fn has(&self, name: &str) -> bool {
        self.first(name).is_some()
    }

    /// The first of `names` that is repeated, if any.
    pub fn repeated<'a>(&self, names: &[&'a str]) -> Option<&'a str> {
        names.iter().copied().find(|n| {
            self.0
                .iter()
                .filter(|(k, v)| k == n && !v.is_empty())
                .count()
                > 1
        })
    }

    /// The first parameter name given more than once (with values), if any. No endpoint of Clavex
    /// takes a multi-valued parameter, so any repeat is refused (RFC 6749 §3.1, §3.2).
    pub fn any_repeated(&self) -> Option<&str> {
        self.0.iter().enumerate().find_map(|(i, (k, v))| {
            let repeated = !v.is_empty()
                && self.0[i + 1..]
                    .iter()
                    .any(|(k2, v2)| k2 == k && !v2.is_empty());
            repeated.then_some(k.as_str())
        })
    }

    pub fn merge(mut self, other: Form) -> Form {
        self.0.extend(other.0);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plus_decodes_to_space_and_percent_2b_to_plus() {
        let f = Form::parse("scope=openid+profile&state=ab%2Bc%3D");
        assert_eq!(f.one("scope").unwrap(), Some("openid profile"));
        assert_eq!(f.one("state").unwrap(), Some("ab+c="));
    }

    #[test]
    fn repeated_parameters_are_reported_and_empty_ones_are_absent() {
        let f = Form::parse("a=1&a=2&b=&c=3");
        assert_eq!(f.one("a"), Err("a"));
        assert_eq!(f.one("b").unwrap(), None);
        assert_eq!(f.repeated(&["c", "a"]), Some("a"));
        assert_eq!(f.any_repeated(), Some("a"));
        assert_eq!(Form::parse("a=1&b=&b=&c=2").any_repeated(), None);
        assert_eq!(Form::parse("x=1&y=2&y=3").any_repeated(), Some("y"));
    }
}
