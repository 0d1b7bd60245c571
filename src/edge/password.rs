//! (admin API work in progress) Password hashing through WebCrypto PBKDF2.
