#![no_main]
// The body lives in fuzz/src/lib.rs, which the normal test suite also drives.
libfuzzer_sys::fuzz_target!(|data: &[u8]| ringwal_fuzz::byte_ring_ops(data));
