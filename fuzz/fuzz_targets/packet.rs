//! Arbitrary bytes through the frame decoder, header, remote error,
//! CONNECT_OPEN arguments and every argument/reply decoder: none may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ironvirt_proto::fuzzing::decode_everything(data);
});
