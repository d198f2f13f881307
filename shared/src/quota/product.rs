//! The products a quota is counted against.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// A product with its own monthly quota.
///
/// On-demand counts both articles and structured contents; metering keeps
/// them apart (see [`crate::metering`]), quota does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Product {
    /// On-demand lookups: articles and structured contents.
    Ondemand,
    /// Snapshot downloads.
    Snapshot,
    /// Snapshot chunk downloads.
    Chunk,
    /// Realtime streams and batches.
    Realtime,
}

impl Product {
    /// Every product, in a stable order.
    pub const ALL: [Product; 4] = [
        Product::Ondemand,
        Product::Snapshot,
        Product::Chunk,
        Product::Realtime,
    ];

    /// The product's wire name, as used in keys, JSON and headers.
    pub fn as_str(self) -> &'static str {
        match self {
            Product::Ondemand => "ondemand",
            Product::Snapshot => "snapshot",
            Product::Chunk => "chunk",
            Product::Realtime => "realtime",
        }
    }
}

impl fmt::Display for Product {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Product {
    type Err = Error;

    fn from_str(s: &str) -> Result<Product> {
        Product::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| {
                Error::Unprocessable(format!(
                    "unknown product '{s}': expected one of ondemand, snapshot, chunk, realtime"
                ))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn products_parse_from_their_wire_names_only() {
        for p in Product::ALL {
            assert_eq!(p.as_str().parse::<Product>(), Ok(p));
        }
        for bad in ["", "Ondemand", "articles", "structured-contents", " chunk"] {
            assert_eq!(
                bad.parse::<Product>().map_err(|e| e.status()),
                Err(422),
                "{bad}"
            );
        }
    }

    #[test]
    fn products_serialise_as_lowercase_strings() {
        assert_eq!(
            serde_json::to_string(&Product::Ondemand).ok(),
            Some("\"ondemand\"".into())
        );
    }
}
