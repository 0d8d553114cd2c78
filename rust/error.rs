//! One error type for the core; the Python layer maps it to exceptions.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The model file is not one namelang can run; the message says why.
    InvalidModel(String),
    /// Reading a file failed.
    Io(String),
    /// An argument is out of range.
    InvalidArgument(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidModel(m) => write!(f, "invalid model file: {m}"),
            Error::Io(m) => write!(f, "{m}"),
            Error::InvalidArgument(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;
