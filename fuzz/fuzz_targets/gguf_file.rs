//! Fuzz target: see `tinyllm_tests::fuzz_input::gguf_file` for what it exercises.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tinyllm_tests::fuzz_input::gguf_file(data));
