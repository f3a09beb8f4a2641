/// A JSON validator written apart from `JSONScanner`, as the fuzz target's reference for what is
/// JSON: RFC 8259 (no trailing comma, no leading zero, no control character in a string), UTF-8,
/// and what the reader adds: an escaped high surrogate is followed by an escaped low one, and a
/// number fits a `Double`. Foundation's parsers are laxer than RFC 8259
/// (JSONSerialization takes `[1,]`; JSONDecoder does not look at what it skips), so they cannot
/// say what the reader must refuse.
struct StrictJSON {
    private let bytes: [UInt8]
    private var index = 0

    /// Whether `bytes` is one JSON value, with nothing but whitespace around it.
    static func isValid(_ bytes: [UInt8]) -> Bool {
        guard String(validating: bytes, as: UTF8.self) != nil else { return false }
        var validator = StrictJSON(bytes: bytes)
        guard validator.value(depth: 0) else { return false }
        validator.whitespace()
        return validator.index == bytes.count
    }

    private init(bytes: [UInt8]) {
        self.bytes = bytes
    }

    private var current: UInt8? { index < bytes.count ? bytes[index] : nil }

    private mutating func whitespace() {
        while let byte = current, [0x20, 0x09, 0x0A, 0x0D].contains(byte) { index += 1 }
    }

    private mutating func take(_ byte: UInt8) -> Bool {
        guard current == byte else { return false }
        index += 1
        return true
    }

    private mutating func value(depth: Int) -> Bool {
        // Deeper than the stack of a recursive validator should go; the caller compares only
        // documents less deep than the reader's own bound.
        guard depth < 1_000 else { return false }
        whitespace()
        switch current {
        case UInt8(ascii: "{"):
            index += 1
            whitespace()
            if take(UInt8(ascii: "}")) { return true }
            repeat {
                whitespace()
                guard string() else { return false }
                whitespace()
                guard take(UInt8(ascii: ":")), value(depth: depth + 1) else { return false }
                whitespace()
            } while take(UInt8(ascii: ","))
            return take(UInt8(ascii: "}"))
        case UInt8(ascii: "["):
            index += 1
            whitespace()
            if take(UInt8(ascii: "]")) { return true }
            repeat {
                guard value(depth: depth + 1) else { return false }
                whitespace()
            } while take(UInt8(ascii: ","))
            return take(UInt8(ascii: "]"))
        case UInt8(ascii: "\""):
            return string()
        case UInt8(ascii: "t"): return word("true")
        case UInt8(ascii: "f"): return word("false")
        case UInt8(ascii: "n"): return word("null")
        default: return number()
        }
    }

    private mutating func word(_ text: String) -> Bool {
        for byte in text.utf8 where !take(byte) { return false }
        return true
    }

    private mutating func string() -> Bool {
        guard take(UInt8(ascii: "\"")) else { return false }
        while let byte = current {
            index += 1
            switch byte {
            case UInt8(ascii: "\""): return true
            case 0..<0x20: return false
            case UInt8(ascii: "\\"):
                guard let escape = current else { return false }
                index += 1
                if escape == UInt8(ascii: "u") {
                    guard let unit = hex4() else { return false }
                    if (0xDC00...0xDFFF).contains(unit) { return false }
                    if (0xD800...0xDBFF).contains(unit) {
                        guard take(UInt8(ascii: "\\")), take(UInt8(ascii: "u")), let low = hex4(), (0xDC00...0xDFFF).contains(low)
                        else { return false }
                    }
                } else if !Array(#""\/bfnrt"#.utf8).contains(escape) {
                    return false
                }
            default: continue
            }
        }
        return false
    }

    private mutating func hex4() -> UInt32? {
        guard index + 4 <= bytes.count, let value = UInt32(String(decoding: bytes[index..<index + 4], as: UTF8.self), radix: 16),
            bytes[index..<index + 4].allSatisfy({ $0 != UInt8(ascii: "+") && $0 != UInt8(ascii: "-") })
        else { return nil }
        index += 4
        return value
    }

    private mutating func number() -> Bool {
        let start = index
        _ = take(UInt8(ascii: "-"))
        if !take(UInt8(ascii: "0")) {
            guard digits() > 0 else { return false }
        }
        if take(UInt8(ascii: ".")) {
            guard digits() > 0 else { return false }
        }
        if take(UInt8(ascii: "e")) || take(UInt8(ascii: "E")) {
            if !take(UInt8(ascii: "+")) { _ = take(UInt8(ascii: "-")) }
            guard digits() > 0 else { return false }
        }
        return Double(String(decoding: bytes[start..<index], as: UTF8.self))?.isFinite ?? false
    }

    private mutating func digits() -> Int {
        let start = index
        while let byte = current, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) { index += 1 }
        return index - start
    }
}
