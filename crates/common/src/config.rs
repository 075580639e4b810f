//! Typed configuration: TOML files plus `VLTAVA_*` environment overrides, via the `config` crate.
//!
//! Environment variables use `__` to descend into sections: `VLTAVA_BROKER__LISTEN=0.0.0.0:9092`
//! overrides `[broker] listen`. Every service struct is `#[serde(default)]`, so an empty file is valid.

use std::path::Path;

use serde::de::DeserializeOwned;

/// Why configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file or the environment did not parse into the expected shape.
    #[error("invalid configuration: {0}")]
    Load(#[from] ::config::ConfigError),
    /// The values parsed but are not acceptable.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// Loads `T` from an optional TOML file, then applies `VLTAVA_*` environment overrides.
pub fn load<T: DeserializeOwned>(file: Option<&Path>) -> Result<T, ConfigError> {
    load_with_prefix(file, "VLTAVA")
}

/// Like [`load`] with another environment prefix (tests use a unique one).
pub fn load_with_prefix<T: DeserializeOwned>(file: Option<&Path>, prefix: &str) -> Result<T, ConfigError> {
    let mut builder = ::config::Config::builder();
    if let Some(path) = file {
        builder = builder.add_source(::config::File::from(path).format(::config::FileFormat::Toml).required(true));
    }
    builder = builder
        .add_source(::config::Environment::with_prefix(prefix).prefix_separator("_").separator("__").try_parsing(true));
    Ok(builder.build()?.try_deserialize()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default, serde::Deserialize)]
    #[serde(default)]
    struct Sample {
        listen: String,
        inner: Inner,
    }

    #[derive(Debug, Default, serde::Deserialize)]
    #[serde(default)]
    struct Inner {
        threads: u32,
    }

    #[test]
    fn file_values_fill_nested_sections() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "listen = \"127.0.0.1:1\"\n[inner]\nthreads = 2\n").unwrap();
        let s: Sample = load_with_prefix(Some(&path), "VLTAVATESTCFG").unwrap();
        assert_eq!(s.listen, "127.0.0.1:1");
        assert_eq!(s.inner.threads, 2);
    }

    #[test]
    fn missing_file_is_an_error() {
        let r: Result<Sample, _> = load(Some(Path::new("/nonexistent/x.toml")));
        assert!(r.is_err());
    }
}
