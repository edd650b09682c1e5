#![no_main]
// See netshim_capture::fuzzing::merge for the properties checked.
libfuzzer_sys::fuzz_target!(|data: &[u8]| netshim_capture::fuzzing::merge(data));
