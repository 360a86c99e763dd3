//! Times: milliseconds since the Unix epoch, shown to clients as RFC 3339.

/// Milliseconds since the Unix epoch.
pub type Millis = i64;

/// The current time in [`Millis`].
pub fn now_ms() -> Millis {
    chrono::Utc::now().timestamp_millis()
}

/// Serde for [`Millis`] as RFC 3339 text (UTC, milliseconds), the form clients see.
pub mod rfc3339 {
    use super::Millis;
    use chrono::{DateTime, SecondsFormat};
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    /// Formats `ms` as RFC 3339.
    pub fn format(ms: Millis) -> String {
        DateTime::from_timestamp_millis(ms)
            .unwrap_or_default()
            .to_rfc3339_opts(SecondsFormat::Millis, true)
    }

    /// Parses RFC 3339 text.
    pub fn parse(text: &str) -> Result<Millis, String> {
        DateTime::parse_from_rfc3339(text)
            .map(|t| t.timestamp_millis())
            .map_err(|e| format!("`{text}` is not an RFC 3339 time: {e}"))
    }

    /// Serialises a time.
    pub fn serialize<S: Serializer>(ms: &Millis, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(*ms))
    }

    /// Deserialises a time.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Millis, D::Error> {
        parse(&String::deserialize(d)?).map_err(D::Error::custom)
    }

    /// The same for optional times.
    pub mod option {
        use super::Millis;
        use serde::{Deserialize, Deserializer, Serializer, de::Error};

        /// Serialises an optional time.
        pub fn serialize<S: Serializer>(ms: &Option<Millis>, s: S) -> Result<S::Ok, S::Error> {
            match ms {
                Some(ms) => s.serialize_str(&super::format(*ms)),
                None => s.serialize_none(),
            }
        }

        /// Deserialises an optional time.
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Millis>, D::Error> {
            Option::<String>::deserialize(d)?
                .map(|text| super::parse(&text).map_err(D::Error::custom))
                .transpose()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_shown_as_rfc3339() {
        assert_eq!(
            rfc3339::format(1_700_000_000_123),
            "2023-11-14T22:13:20.123Z"
        );
        assert_eq!(
            rfc3339::parse("2023-11-14T23:13:20.123+01:00"),
            Ok(1_700_000_000_123)
        );
        assert!(rfc3339::parse("yesterday").is_err());
    }
}
