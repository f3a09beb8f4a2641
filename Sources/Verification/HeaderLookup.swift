/// Finds a header by name, ignoring ASCII case, without allocating.
///
/// Verifiers take headers as any sequence of `(name, value)` pairs so that this target does not
/// depend on an HTTP library. A header that appears more than once is reported as ``Lookup/repeated``:
/// a signature header must be unambiguous.
enum HeaderLookup {
    enum Lookup {
        case absent
        case found(String)
        case repeated
    }

    static func find(_ name: StaticString, in headers: some Sequence<(String, String)>) -> Lookup {
        var result: Lookup = .absent
        for (candidate, value) in headers where equalsIgnoringASCIICase(candidate, name) {
            if case .found = result { return .repeated }
            result = .found(value)
        }
        return result
    }

    /// `expected` must be lowercase ASCII.
    static func equalsIgnoringASCIICase(_ candidate: String, _ expected: StaticString) -> Bool {
        expected.withUTF8Buffer { expectedBytes in
            var candidate = candidate
            return candidate.withUTF8 { candidateBytes in
                guard candidateBytes.count == expectedBytes.count else { return false }
                for index in 0..<candidateBytes.count {
                    var byte = candidateBytes[index]
                    if byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") { byte |= 0x20 }
                    if byte != expectedBytes[index] { return false }
                }
                return true
            }
        }
    }
}
