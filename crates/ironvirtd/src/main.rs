//! ironvirtd, the daemon that serves libvirt's RPC protocol

fn main() {}
