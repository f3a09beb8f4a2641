/// A strict, allocation-light JSON reader for the envelope fields.
///
/// It walks one JSON document byte by byte: members the caller asks for are read (strings with
/// every escape, integers, booleans), every other value is skipped but still checked against the
/// JSON grammar (RFC 8259), and anything after the document but whitespace is an error. It exists
/// because decoding an envelope with `JSONDecoder` cost more than verifying its signature.
package struct JSONScanner {
    package struct Invalid: Error {
        package init() {}
    }

    /// A scalar read from the document (numbers as their text); objects and arrays are `.other`.
    package enum Scalar: Equatable {
        case string(String)
        case integer(String)
        /// A number with a fraction or an exponent.
        case number(String)
        case bool(Bool)
        case null
        case other
    }

    private let bytes: [UInt8]
    private var index = 0
    private static let maximumDepth = 64

    /// Fails unless `bytes` is valid UTF-8.
    package init(_ bytes: [UInt8]) throws(Invalid) {
        guard Self.isValidUTF8(bytes) else { throw Invalid() }
        self.bytes = bytes
    }

    /// The UTF-8 of a `String`, which is valid by construction and is not checked again.
    init(utf8 text: String) {
        self.bytes = Array(text.utf8)
    }

    /// An envelope is usually ASCII: that is checked a word at a time, and only other text is
    /// decoded to check it.
    static func isValidUTF8(_ bytes: [UInt8]) -> Bool {
        let isASCII = bytes.withUnsafeBytes { raw in
            var index = 0
            var high: UInt64 = 0
            while index + 8 <= raw.count {
                high |= raw.loadUnaligned(fromByteOffset: index, as: UInt64.self)
                index += 8
            }
            while index < raw.count {
                high |= UInt64(raw[index])
                index += 1
            }
            return high & 0x8080_8080_8080_8080 == 0
        }
        return isASCII || String(validating: bytes, as: UTF8.self) != nil
    }

    /// Reads a whole document that must be an object, calling `member` with each key; `member`
    /// must consume the value with ``readScalar()`` or ``skipValue()``.
    package mutating func readDocument(_ member: (String, inout JSONScanner) throws(Invalid) -> Void) throws(Invalid) {
        try readObject(member)
        skipWhitespace()
        guard index == bytes.count else { throw Invalid() }
    }

    package mutating func readObject(_ member: (String, inout JSONScanner) throws(Invalid) -> Void) throws(Invalid) {
        skipWhitespace()
        try expect(UInt8(ascii: "{"))
        skipWhitespace()
        if peek() == UInt8(ascii: "}") {
            index += 1
            return
        }
        while true {
            skipWhitespace()
            let key = try readString()
            skipWhitespace()
            try expect(UInt8(ascii: ":"))
            try member(key, &self)
            skipWhitespace()
            switch next() {
            case UInt8(ascii: ","): continue
            case UInt8(ascii: "}"): return
            default: throw Invalid()
            }
        }
    }

    package mutating func readScalar() throws(Invalid) -> Scalar {
        skipWhitespace()
        guard let first = peek() else { throw Invalid() }
        switch first {
        case UInt8(ascii: "\""): return .string(try readString())
        case UInt8(ascii: "t"):
            try expectWord("true")
            return .bool(true)
        case UInt8(ascii: "f"):
            try expectWord("false")
            return .bool(false)
        case UInt8(ascii: "n"):
            try expectWord("null")
            return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            let start = index
            let isInteger = try skipNumber()
            let text = String(decoding: bytes[start..<index], as: UTF8.self)
            // Like Foundation's parsers, a number beyond the range of a Double is invalid.
            if !isInteger, !(Double(text)?.isFinite ?? false) { throw Invalid() }
            return isInteger ? .integer(text) : .number(text)
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            try skipValue()
            return .other
        default:
            throw Invalid()
        }
    }

    /// Reads an array, calling `element` for each value; `element` must consume it with
    /// ``readScalar()``, ``readObject(_:)``, ``readArray(_:)`` or ``skipValue()``.
    package mutating func readArray(_ element: (inout JSONScanner) throws(Invalid) -> Void) throws(Invalid) {
        skipWhitespace()
        try expect(UInt8(ascii: "["))
        skipWhitespace()
        if peek() == UInt8(ascii: "]") {
            index += 1
            return
        }
        while true {
            try element(&self)
            skipWhitespace()
            switch next() {
            case UInt8(ascii: ","): continue
            case UInt8(ascii: "]"): return
            default: throw Invalid()
            }
        }
    }

    package mutating func skipValue(depth: Int = 0) throws(Invalid) {
        guard depth < Self.maximumDepth else { throw Invalid() }
        skipWhitespace()
        switch peek() {
        case UInt8(ascii: "{"):
            try readObject { _, scanner throws(Invalid) in try scanner.skipValue(depth: depth + 1) }
        case UInt8(ascii: "["):
            try readArray { scanner throws(Invalid) in try scanner.skipValue(depth: depth + 1) }
        default:
            _ = try readScalar()
        }
    }

    // MARK: Tokens

    private mutating func readString() throws(Invalid) -> String {
        try expect(UInt8(ascii: "\""))
        let start = index
        // Fast path: no escapes.
        index = endOfRun(from: index)
        if index < bytes.count, bytes[index] == UInt8(ascii: "\"") {
            defer { index += 1 }
            return String(decoding: bytes[start..<index], as: UTF8.self)
        }
        // Slow path: unescape into UTF-8 bytes, copying the runs between escapes whole.
        var buffer: [UInt8] = []
        buffer.reserveCapacity(bytes.count - start)
        var runStart = start
        while index < bytes.count {
            switch bytes[index] {
            case UInt8(ascii: "\""):
                buffer.append(contentsOf: bytes[runStart..<index])
                index += 1
                return String(decoding: buffer, as: UTF8.self)
            case UInt8(ascii: "\\"):
                buffer.append(contentsOf: bytes[runStart..<index])
                index += 1
                UTF8.encode(try readEscape()) { buffer.append($0) }
                runStart = index
                index = endOfRun(from: index)
            default:
                // A control character, which must be escaped in a string.
                throw Invalid()
            }
        }
        throw Invalid()
    }

    /// The index of the first quote, backslash or control character at or after `start` (the
    /// end of the input if there is none): the part of a string that is copied as it is.
    private func endOfRun(from start: Int) -> Int {
        bytes.withUnsafeBufferPointer { buffer in
            var index = start
            while index < buffer.count {
                let byte = buffer[index]
                if byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") || byte < 0x20 { break }
                index += 1
            }
            return index
        }
    }

    private mutating func readEscape() throws(Invalid) -> Unicode.Scalar {
        switch next() {
        case UInt8(ascii: "\""): return "\""
        case UInt8(ascii: "\\"): return "\\"
        case UInt8(ascii: "/"): return "/"
        case UInt8(ascii: "b"): return "\u{08}"
        case UInt8(ascii: "f"): return "\u{0C}"
        case UInt8(ascii: "n"): return "\n"
        case UInt8(ascii: "r"): return "\r"
        case UInt8(ascii: "t"): return "\t"
        case UInt8(ascii: "u"):
            let unit = try readHex4()
            if (0xD800...0xDBFF).contains(unit) {
                // A high surrogate must be followed by an escaped low surrogate.
                guard next() == UInt8(ascii: "\\"), next() == UInt8(ascii: "u") else { throw Invalid() }
                let low = try readHex4()
                guard (0xDC00...0xDFFF).contains(low) else { throw Invalid() }
                let value = 0x10000 + ((UInt32(unit) - 0xD800) << 10) + (UInt32(low) - 0xDC00)
                guard let scalar = Unicode.Scalar(value) else { throw Invalid() }
                return scalar
            }
            guard let scalar = Unicode.Scalar(unit) else { throw Invalid() }
            return scalar
        default:
            throw Invalid()
        }
    }

    private mutating func readHex4() throws(Invalid) -> UInt16 {
        var value: UInt16 = 0
        for _ in 0..<4 {
            guard let byte = next() else { throw Invalid() }
            let digit: UInt16
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt16(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt16(byte - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt16(byte - UInt8(ascii: "A") + 10)
            default: throw Invalid()
            }
            value = value << 4 | digit
        }
        return value
    }

    /// Skips `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`; returns whether it was an integer.
    private mutating func skipNumber() throws(Invalid) -> Bool {
        let start = index
        if peek() == UInt8(ascii: "-") { index += 1 }
        if peek() == UInt8(ascii: "0") {
            index += 1
        } else {
            guard try skipDigits() > 0 else { throw Invalid() }
        }
        var isInteger = true
        if peek() == UInt8(ascii: ".") {
            index += 1
            guard try skipDigits() > 0 else { throw Invalid() }
            isInteger = false
        }
        if peek() == UInt8(ascii: "e") || peek() == UInt8(ascii: "E") {
            index += 1
            if peek() == UInt8(ascii: "+") || peek() == UInt8(ascii: "-") { index += 1 }
            guard try skipDigits() > 0 else { throw Invalid() }
            isInteger = false
        }
        // An integer beyond the range of a Double is invalid too, as for Foundation's parsers
        // (fuzz-envelope checks that the scanner reads only what JSONSerialization reads). Only
        // one of more than 308 digits can be: only that is converted.
        if isInteger, index - start > 308, !(Double(String(decoding: bytes[start..<index], as: UTF8.self))?.isFinite ?? false) {
            throw Invalid()
        }
        return isInteger
    }

    private mutating func skipDigits() throws(Invalid) -> Int {
        let start = index
        while let byte = peek(), byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") { index += 1 }
        return index - start
    }

    private mutating func skipWhitespace() {
        while let byte = peek(),
            byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\r") || byte == UInt8(ascii: "\t")
        {
            index += 1
        }
    }

    private mutating func expectWord(_ word: String) throws(Invalid) {
        for expected in word.utf8 {
            guard next() == expected else { throw Invalid() }
        }
    }

    private mutating func expect(_ byte: UInt8) throws(Invalid) {
        guard next() == byte else { throw Invalid() }
    }

    private func peek() -> UInt8? {
        index < bytes.count ? bytes[index] : nil
    }

    private mutating func next() -> UInt8? {
        defer { index += 1 }
        return peek()
    }
}
