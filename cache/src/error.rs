//! The cache crate's one error type. None of these ever reaches a client: a failed cache
//! call becomes a read from local state (and a count), never a failed request.

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Redis answered with an error, or the connection failed.
    #[error("redis: {0}")]
    Redis(String),
    /// Redis does not hold the compare-and-set script (it restarted): load it and retry.
    #[error("redis does not hold the script")]
    NoScript,
    /// Redis did not answer within `timeout_ms`.
    #[error("redis did not answer within {0} ms")]
    Timeout(u64),
    /// A configuration value is out of range or malformed.
    #[error("cache configuration: {0}")]
    Config(String),
    /// Reading this node's own state failed.
    #[error("local state: {0}")]
    Local(String),
}

impl From<redis::RedisError> for Error {
    fn from(error: redis::RedisError) -> Error {
        if error.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) {
            return Error::NoScript;
        }
        Error::Redis(error.to_string())
    }
}

impl From<storage::Error> for Error {
    fn from(error: storage::Error) -> Error {
        Error::Local(error.to_string())
    }
}
