#![no_main]
// See netshim_runtime::fuzzing::config for the properties checked.
libfuzzer_sys::fuzz_target!(|data: &[u8]| netshim_runtime::fuzzing::config(data));
