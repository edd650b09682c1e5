#![no_main]
// See netshim_runtime::fuzzing::policy for the properties checked.
libfuzzer_sys::fuzz_target!(|data: &[u8]| netshim_runtime::fuzzing::policy(data));
