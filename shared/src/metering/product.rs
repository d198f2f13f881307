//! The products usage is metered for.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::quota::Product;
use crate::{Error, Result};

/// A metered product. Unlike quota, metering tells articles and structured
/// contents apart, though both count against the on-demand quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MeteredProduct {
    /// On-demand articles.
    Ondemand,
    /// On-demand structured contents.
    StructuredContents,
    /// Snapshot downloads.
    Snapshot,
    /// Snapshot chunk downloads.
    Chunk,
    /// Realtime streams and batches.
    Realtime,
}

impl MeteredProduct {
    /// Every metered product, in report order.
    pub const ALL: [MeteredProduct; 5] = [
        MeteredProduct::Ondemand,
        MeteredProduct::StructuredContents,
        MeteredProduct::Snapshot,
        MeteredProduct::Chunk,
        MeteredProduct::Realtime,
    ];

    /// The wire name used in keys, JSON and CSV.
    pub fn as_str(self) -> &'static str {
        match self {
            MeteredProduct::Ondemand => "ondemand",
            MeteredProduct::StructuredContents => "structured-contents",
            MeteredProduct::Snapshot => "snapshot",
            MeteredProduct::Chunk => "chunk",
            MeteredProduct::Realtime => "realtime",
        }
    }

    /// The quota product this usage counts against.
    pub fn quota_product(self) -> Product {
        match self {
            MeteredProduct::Ondemand | MeteredProduct::StructuredContents => Product::Ondemand,
            MeteredProduct::Snapshot => Product::Snapshot,
            MeteredProduct::Chunk => Product::Chunk,
            MeteredProduct::Realtime => Product::Realtime,
        }
    }
}

impl fmt::Display for MeteredProduct {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for MeteredProduct {
    type Err = Error;

    fn from_str(s: &str) -> Result<MeteredProduct> {
        MeteredProduct::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| Error::Unprocessable(format!("unknown metered product '{s}'")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn structured_contents_is_metered_apart_but_counts_as_ondemand() {
        let sc: MeteredProduct = "structured-contents".parse().expect("known");
        assert_eq!(sc, MeteredProduct::StructuredContents);
        assert_eq!(sc.quota_product(), Product::Ondemand);
        assert_eq!(
            serde_json::to_string(&sc).ok(),
            Some("\"structured-contents\"".into())
        );
        assert!("structured_contents".parse::<MeteredProduct>().is_err());
        for p in MeteredProduct::ALL {
            assert_eq!(p.as_str().parse::<MeteredProduct>(), Ok(p));
        }
    }
}
