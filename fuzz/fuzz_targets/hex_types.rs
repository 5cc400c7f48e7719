#![no_main]
// Every input goes through kith_proto::harness::hex_types, the oracle tests/properties.rs also runs.
libfuzzer_sys::fuzz_target!(|data: &[u8]| kith_proto::harness::hex_types(data));
