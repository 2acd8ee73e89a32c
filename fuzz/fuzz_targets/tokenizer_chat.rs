//! Fuzz target: see `tinyllm_tests::fuzz_input::tokenizer_chat` for what it exercises.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tinyllm_tests::fuzz_input::tokenizer_chat(data));
