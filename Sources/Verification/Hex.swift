/// Hexadecimal helpers for signature comparison.
enum Hex {
    /// The value of one lowercase hex digit, or `nil`.
    ///
    /// Uppercase is rejected on purpose: TikTok and common HMAC libraries send lowercase, and a
    /// single accepted spelling means that any change to the header text fails verification.
    @inline(__always)
    static func nibble(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte &- UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte &- UInt8(ascii: "a") &+ 10
        default: nil
        }
    }

    /// Whether `hex` is exactly `2 * byteCount` lowercase hex digits.
    static func isHex(_ hex: UnsafeBufferPointer<UInt8>, byteCount: Int) -> Bool {
        guard hex.count == 2 * byteCount else { return false }
        for byte in hex where nibble(byte) == nil { return false }
        return true
    }

    /// Compares a hex string (already checked by ``isHex(_:byteCount:)``) with raw bytes.
    ///
    /// The time taken depends only on the lengths, never on where the first difference is.
    static func constantTimeEquals(hex: UnsafeBufferPointer<UInt8>, bytes: UnsafeRawBufferPointer) -> Bool {
        guard hex.count == 2 * bytes.count else { return false }
        var difference: UInt8 = 0
        for index in 0..<bytes.count {
            let high = nibble(hex[2 * index]) ?? 0xFF
            let low = nibble(hex[2 * index + 1]) ?? 0xFF
            difference |= ((high << 4) | (low & 0x0F)) ^ bytes[index]
            difference |= (high | low) & 0xF0
        }
        return difference == 0
    }

    /// Lowercase hex of `bytes`.
    static func encode(_ bytes: some Sequence<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.underestimatedCount * 2)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// Compares two byte buffers in time that depends only on their lengths.
@usableFromInline
func constantTimeEquals(_ lhs: UnsafeRawBufferPointer, _ rhs: UnsafeRawBufferPointer) -> Bool {
    guard lhs.count == rhs.count else { return false }
    var difference: UInt8 = 0
    for index in 0..<lhs.count {
        difference |= lhs[index] ^ rhs[index]
    }
    return difference == 0
}
