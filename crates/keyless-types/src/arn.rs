use std::fmt;

/// Why a string is not an ARN.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArnError {
    /// Fewer than six colon-separated parts, or not starting with `arn:`.
    #[error("{0:?} is not an ARN: expected arn:partition:service:region:account:resource")]
    Shape(String),
    /// The partition, service or resource part is empty.
    #[error("{0:?} is not an ARN: partition, service and resource must not be empty")]
    EmptyPart(String),
}

/// An Amazon Resource Name split into its six parts.
///
/// The resource part is everything after the fifth colon and may itself contain `:` and `/`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Arn {
    /// `aws`, `aws-cn`, `aws-us-gov`, …
    pub partition: String,
    /// `iam`, `sts`, `s3`, …
    pub service: String,
    /// Region, empty for global services.
    pub region: String,
    /// Account id, empty for some services (S3 buckets).
    pub account: String,
    /// Everything after the fifth colon.
    pub resource: String,
}

impl Arn {
    /// Parses an ARN. Only the shape is checked, not what each service allows.
    pub fn parse(s: &str) -> Result<Self, ArnError> {
        let mut parts = s.splitn(6, ':');
        let (
            Some("arn"),
            Some(partition),
            Some(service),
            Some(region),
            Some(account),
            Some(resource),
        ) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        )
        else {
            return Err(ArnError::Shape(s.to_owned()));
        };
        if partition.is_empty() || service.is_empty() || resource.is_empty() {
            return Err(ArnError::EmptyPart(s.to_owned()));
        }
        Ok(Arn {
            partition: partition.to_owned(),
            service: service.to_owned(),
            region: region.to_owned(),
            account: account.to_owned(),
            resource: resource.to_owned(),
        })
    }
}

impl fmt::Display for Arn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "arn:{}:{}:{}:{}:{}",
            self.partition, self.service, self.region, self.account, self.resource
        )
    }
}

impl std::str::FromStr for Arn {
    type Err = ArnError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_keeps_colons_and_slashes() {
        let arn = Arn::parse("arn:aws:iam::123456789012:role/path/x:y").unwrap();
        assert_eq!(arn.service, "iam");
        assert_eq!(arn.region, "");
        assert_eq!(arn.account, "123456789012");
        assert_eq!(arn.resource, "role/path/x:y");
        assert_eq!(arn.to_string(), "arn:aws:iam::123456789012:role/path/x:y");
    }

    #[test]
    fn malformed_arns_are_rejected() {
        for bad in [
            "",
            "arn",
            "arn:aws:iam::123",
            "ARN:aws:iam::1:r",
            "arn::iam::1:r",
            "arn:aws:::1:r",
            "arn:aws:iam::1:",
        ] {
            assert!(Arn::parse(bad).is_err(), "{bad:?}");
        }
    }
}
