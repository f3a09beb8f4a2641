/// Event ids: `evt_` and a ULID (48 bits of milliseconds, 80 random bits, Crockford base32), so ids
/// sort by arrival and are unique without coordination.
public enum EventID {
    private static let alphabet = Array("0123456789ABCDEFGHJKMNPQRSTVWXYZ".utf8)

    public static func make(milliseconds: Int64, prefix: String = "evt_") -> String {
        var generator = SystemRandomNumberGenerator()
        return make(milliseconds: milliseconds, prefix: prefix, using: &generator)
    }

    public static func make(milliseconds: Int64, prefix: String, using generator: inout some RandomNumberGenerator) -> String {
        // 128 bits: the timestamp in the top 48, randomness below.
        let high = (UInt64(truncatingIfNeeded: milliseconds) << 16) | UInt64(generator.next() & 0xFFFF)
        let low = generator.next()
        var out = [UInt8](repeating: 0, count: 26)
        // 26 base32 digits cover 130 bits; the first digit carries the top 3 bits.
        for index in (0..<26).reversed() {
            let shift = (25 - index) * 5
            let value: UInt64
            if shift >= 128 {
                value = 0
            } else if shift >= 64 {
                value = (high >> UInt64(shift - 64)) & 0x1F
            } else if shift > 59 {
                value = ((low >> UInt64(shift)) | (high << UInt64(64 - shift))) & 0x1F
            } else {
                value = (low >> UInt64(shift)) & 0x1F
            }
            out[index] = alphabet[Int(value)]
        }
        return prefix + String(decoding: out, as: UTF8.self)
    }
}
