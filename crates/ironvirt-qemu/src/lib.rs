//! The QEMU/KVM driver
