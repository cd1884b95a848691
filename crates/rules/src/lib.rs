//! AWS IoT SQL (in progress).
