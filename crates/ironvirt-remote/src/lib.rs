//! The remote driver: libvirt's RPC protocol, client side
