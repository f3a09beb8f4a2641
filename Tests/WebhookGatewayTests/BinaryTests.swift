import Testing

/// The suites that run the built binary (and, some, other processes beside it): one at a time, so
/// that their load does not pile up on a 2-core machine and make timing-sensitive tests elsewhere
/// starve. Each is nested here by an extension, in its own file.
@Suite(.serialized)
struct BinaryTests {}
