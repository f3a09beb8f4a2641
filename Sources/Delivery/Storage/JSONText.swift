/// Minimal JSON text writing for the hot paths, where `JSONEncoder` costs more than the work.
package enum JSONText {
    /// `text` as a JSON string literal, quotes included.
    package static func string(_ text: String) -> String {
        var out = "\""
        out.reserveCapacity(text.utf8.count + 2)
        appendEscaped(text, to: &out)
        out.append("\"")
        return out
    }

    /// A JSON object of string members, in the given order. (Concrete, so that callers in other
    /// modules get a specialized function rather than a generic one run through metadata.)
    package static func object(_ members: [(String, String)]) -> String {
        var out = "{"
        var first = true
        for (key, value) in members {
            if !first { out.append(",") }
            first = false
            out.append("\"")
            appendEscaped(key, to: &out)
            out.append("\":\"")
            appendEscaped(value, to: &out)
            out.append("\"")
        }
        out.append("}")
        return out
    }

    private static func appendEscaped(_ text: String, to out: inout String) {
        // Fast path: nothing to escape.
        if !text.utf8.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) {
            out.append(text)
            return
        }
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out.append("\\\"")
            case "\\": out.append("\\\\")
            case "\n": out.append("\\n")
            case "\r": out.append("\\r")
            case "\t": out.append("\\t")
            case _ where scalar.value < 0x20:
                let hex = Array("0123456789abcdef".unicodeScalars)
                out.append("\\u00")
                out.unicodeScalars.append(hex[Int(scalar.value >> 4)])
                out.unicodeScalars.append(hex[Int(scalar.value & 0xF)])
            default: out.unicodeScalars.append(scalar)
            }
        }
    }
}
