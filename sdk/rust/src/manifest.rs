//! [`manifest!`](crate::manifest): a plugin's settings, embedded in its module as the
//! `orchestra-manifest` custom section, for the host to read when it loads the module.

/// Embeds the plugin's settings, a TOML text (a literal or `include_str!`), in the module.
///
/// The host reads them when it loads the module; a `NAME.toml` beside it overrides them
/// field by field. The fields are `fuel`, `timeout_ms`, `memory_mb`, `result_mb`, `log_mb`,
/// `disk_quota_mb`, `max_attempts`, `retry_delays_seconds` and `queue`; the host reports a
/// module whose manifest does not parse and runs none of its jobs. Once per plugin.
///
/// ```
/// orchestra_plugin::manifest!("max_attempts = 3\nretry_delays_seconds = [60]\n");
/// ```
#[macro_export]
macro_rules! manifest {
    ($toml:expr $(,)?) => {
        // `link_section` is unsafe because a section can clash with what the linker lays
        // out; a custom section is only data that nothing executes or reads at run time.
        #[allow(unsafe_code)]
        #[used]
        #[cfg_attr(target_arch = "wasm32", unsafe(link_section = "orchestra-manifest"))]
        static ORCHESTRA_MANIFEST: [u8; $toml.len()] = $crate::manifest::bytes($toml);
    };
}

/// The bytes of `text`, which is `N` bytes long, as an array: what [`manifest!`](crate::manifest) embeds.
#[doc(hidden)]
pub const fn bytes<const N: usize>(text: &str) -> [u8; N] {
    match text.as_bytes().first_chunk() {
        Some(bytes) if text.len() == N => *bytes,
        _ => panic!("the manifest's length is its text's"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_section_holds_the_text_as_it_is() {
        crate::manifest!("max_attempts = 3\nqueue = \"ünï\"\n");
        assert_eq!(
            &ORCHESTRA_MANIFEST,
            "max_attempts = 3\nqueue = \"ünï\"\n".as_bytes()
        );
    }

    #[test]
    fn an_included_file_is_embedded_too() {
        crate::manifest!(include_str!("../Cargo.toml"));
        assert_eq!(&ORCHESTRA_MANIFEST, include_bytes!("../Cargo.toml"));
    }
}
