//! What a module's bytes say about whether it can ever run under its limits, checked
//! when it is loaded rather than job by job.

use super::{Error, Limits};

/// Checks that every memory a component's core modules define starts within
/// `limits.memory_bytes`: one that does not could never be instantiated.
///
/// Bytes that do not parse are left to the compiler to report.
///
/// # Errors
/// [`Error::Limits`] naming the initial size and the limit.
pub fn check_fits(module: &[u8], limits: &Limits) -> Result<(), Error> {
    let initial = initial_memory_bytes(module);
    if initial > limits.memory_bytes as u64 {
        let needed = initial.div_ceil(1 << 20);
        return Err(Error::Limits(format!(
            "it needs at least {needed} MiB: its initial memory of {initial} bytes is above \
             its memory_mb of {} MiB; give it memory_mb = {needed} or more in its manifest \
             (within the operator's max_memory_mb)",
            limits.memory_bytes >> 20
        )));
    }
    Ok(())
}

/// The largest initial size of a memory defined by any core module, at any depth.
fn initial_memory_bytes(module: &[u8]) -> u64 {
    let mut largest = 0;
    for payload in wasmparser::Parser::new(0).parse_all(module) {
        let Ok(wasmparser::Payload::MemorySection(memories)) = payload else {
            continue;
        };
        for memory in memories.into_iter().flatten() {
            let page_bits = memory.page_size_log2.unwrap_or(16);
            let bytes = memory.initial.checked_shl(page_bits).unwrap_or(u64::MAX);
            largest = largest.max(bytes);
        }
    }
    largest
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A core module with one memory of `pages` initial pages.
    fn module_with_memory(pages: u8) -> Vec<u8> {
        let mut bytes = b"\0asm\x01\0\0\0".to_vec();
        // Memory section: one memory, no maximum, `pages` initial pages.
        bytes.extend_from_slice(&[5, 3, 1, 0, pages]);
        bytes
    }

    #[test]
    fn a_memory_that_starts_above_the_limit_is_refused() {
        let limits = Limits {
            memory_bytes: 1 << 20,
            ..Limits::default()
        };
        // 16 pages of 64 KiB: exactly 1 MiB.
        assert!(check_fits(&module_with_memory(16), &limits).is_ok());
        let error = check_fits(&module_with_memory(17), &limits).unwrap_err();
        let error = error.to_string();
        assert!(error.contains("needs at least 2 MiB"), "{error}");
        assert!(error.contains("memory_mb of 1 MiB"), "{error}");
    }

    #[test]
    fn bytes_that_are_not_wasm_are_left_to_the_compiler() {
        assert!(check_fits(b"not wasm", &Limits::default()).is_ok());
    }
}
