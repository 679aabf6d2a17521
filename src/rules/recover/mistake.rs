//! A mistake against the schema, as the recovering reader reports it.

use std::fmt;

use serde::de;

use crate::rules::validate::first_line;

/// A mistake against the schema: serde's message, a suggestion, and for a missing field its
/// name (a field left out because its value was wrong is not reported again as missing).
#[derive(Debug)]
pub(super) struct Mistake {
    pub(super) message: String,
    pub(super) hint: Option<String>,
    pub(super) missing: Option<&'static str>,
}

impl fmt::Display for Mistake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Mistake {}

/// Messages are serde-saphyr's own, so a mistake reads the same whichever reader found it.
impl de::Error for Mistake {
    fn custom<T: fmt::Display>(message: T) -> Self {
        Mistake::from(<serde_saphyr::Error as de::Error>::custom(message))
    }

    fn invalid_type(unexpected: de::Unexpected, expected: &dyn de::Expected) -> Self {
        Mistake::from(<serde_saphyr::Error as de::Error>::invalid_type(
            unexpected, expected,
        ))
    }

    fn invalid_value(unexpected: de::Unexpected, expected: &dyn de::Expected) -> Self {
        Mistake::from(<serde_saphyr::Error as de::Error>::invalid_value(
            unexpected, expected,
        ))
    }

    fn invalid_length(len: usize, expected: &dyn de::Expected) -> Self {
        Mistake::from(<serde_saphyr::Error as de::Error>::invalid_length(
            len, expected,
        ))
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        Mistake {
            hint: crate::format::did_you_mean(field, expected.iter().copied()),
            ..Mistake::from(<serde_saphyr::Error as de::Error>::unknown_field(
                field, expected,
            ))
        }
    }

    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        Mistake {
            hint: crate::format::did_you_mean(variant, expected.iter().copied()),
            ..Mistake::from(<serde_saphyr::Error as de::Error>::unknown_variant(
                variant, expected,
            ))
        }
    }

    fn missing_field(field: &'static str) -> Self {
        Mistake {
            missing: Some(field),
            ..Mistake::from(<serde_saphyr::Error as de::Error>::missing_field(field))
        }
    }
}

impl From<serde_saphyr::Error> for Mistake {
    fn from(error: serde_saphyr::Error) -> Self {
        Mistake {
            message: first_line(&error.to_string()),
            hint: None,
            missing: None,
        }
    }
}
