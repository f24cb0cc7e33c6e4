#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| sessionctl_fuzz::cookie_header(data));
