/// Splits a `key=value,key=value` signature header into its elements without allocating.
///
/// Accepted: optional spaces or tabs around each element, elements in any order, unknown keys made
/// of lowercase letters and digits (ignored by the callers). Rejected: empty elements (`,,`, a
/// trailing comma), an element without `=`, an empty key or value, a key with other characters.
/// Package access for the fuzz target (`Fuzz/`).
package enum SignatureElements {
    package typealias Bytes = UnsafeBufferPointer<UInt8>

    package static func forEach(
        in header: Bytes,
        headerName: String,
        _ body: (_ key: Bytes, _ value: Bytes) throws(VerificationError) -> Void
    ) throws(VerificationError) {
        var start = 0
        while start <= header.count {
            var end = start
            while end < header.count && header[end] != UInt8(ascii: ",") { end += 1 }
            let element = trimmed(header, start..<end)
            guard !element.isEmpty else {
                throw .malformedHeader(headerName, "empty element")
            }
            guard let equals = element.first(where: { header[$0] == UInt8(ascii: "=") }) else {
                throw .malformedHeader(headerName, "element without '='")
            }
            let key = element.lowerBound..<equals
            let value = (equals + 1)..<element.upperBound
            guard !key.isEmpty, !value.isEmpty else {
                throw .malformedHeader(headerName, "empty key or value")
            }
            for index in key where !isKeyByte(header[index]) {
                throw .malformedHeader(headerName, "invalid key")
            }
            try body(Bytes(rebasing: header[key]), Bytes(rebasing: header[value]))
            start = end + 1
        }
    }

    private static func trimmed(_ bytes: Bytes, _ range: Range<Int>) -> Range<Int> {
        var lower = range.lowerBound
        var upper = range.upperBound
        while lower < upper && isSpace(bytes[lower]) { lower += 1 }
        while upper > lower && isSpace(bytes[upper - 1]) { upper -= 1 }
        return lower..<upper
    }

    @inline(__always)
    private static func isSpace(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t")
    }

    @inline(__always)
    private static func isKeyByte(_ byte: UInt8) -> Bool {
        (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z"))
            || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
    }

    /// Whether `bytes` is exactly the single ASCII character `character`.
    @inline(__always)
    static func isKey(_ bytes: Bytes, _ character: Unicode.Scalar) -> Bool {
        bytes.count == 1 && bytes[0] == UInt8(ascii: character)
    }

    /// Parses 1 to 12 ASCII digits (unix seconds up to the year 33658).
    static func unixSeconds(_ bytes: Bytes) -> Int64? {
        guard (1...12).contains(bytes.count) else { return nil }
        var value: Int64 = 0
        for byte in bytes {
            guard byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") else { return nil }
            value = value * 10 + Int64(byte - UInt8(ascii: "0"))
        }
        return value
    }
}
