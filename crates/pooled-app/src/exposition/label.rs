//! Label values for prometheus-client's text encoder, which writes them as given: [`Esc`]
//! escapes backslash, double quote and newline as both text formats require, so a route
//! template or a database name can never break a line of the exposition.

use std::fmt::Write;

use prometheus_client::encoding::{EncodeLabelValue, LabelValueEncoder};

/// A label value written escaped.
#[derive(Debug, Clone, Copy)]
pub struct Esc<'a>(pub &'a str);

impl EncodeLabelValue for Esc<'_> {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        let s = self.0;
        if !s.contains(['\\', '"', '\n']) {
            return encoder.write_str(s);
        }
        for c in s.chars() {
            match c {
                '\\' => encoder.write_str("\\\\")?,
                '"' => encoder.write_str("\\\"")?,
                '\n' => encoder.write_str("\\n")?,
                c => encoder.write_char(c)?,
            }
        }
        Ok(())
    }
}

/// A label set of escaped `(name, value)` pairs.
pub type Labels<'a> = Vec<(&'static str, Esc<'a>)>;
