//! libvirt's RPC wire protocol: framing, programs, procedures, messages
