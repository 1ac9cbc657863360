#![no_main]
// The body lives in fuzz/src/tracing_decoder.rs, which tracing/tests/fuzz_body.rs also drives.
#[path = "../src/tracing_decoder.rs"]
mod body;

libfuzzer_sys::fuzz_target!(|data: &[u8]| body::tracing_decoder(data));
