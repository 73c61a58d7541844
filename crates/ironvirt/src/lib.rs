//! The ironvirt library: connect to a hypervisor by URI and manage its domains
