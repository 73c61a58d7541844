//! ironvirsh, a virsh-compatible command line

fn main() {}
