//! XDR (RFC 4506) encoding and decoding
