//! The embedded test driver (test:///default)
